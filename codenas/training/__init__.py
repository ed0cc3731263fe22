"""The brief training loop (Lightning Fabric over in-memory tensors) and thread pinning."""
