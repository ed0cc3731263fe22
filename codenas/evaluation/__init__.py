"""One network's neural code: spec -> module -> brief training -> activations -> metric values."""
