"""``codenas metrics``, ``codenas spaces``, ``codenas datasets``: what a config can name."""

from __future__ import annotations

import argparse

from codenas.cli._common import print_rows


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, func, text in (
        ("metrics", metrics, "list the registered metrics, one line each"),
        ("spaces", spaces, "list the registered search spaces, one line each"),
        ("datasets", datasets, "list the datasets a config can name, one line each"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)


def metrics(args: argparse.Namespace) -> int:
    from codenas.metrics import METRICS

    rows = []
    for name, info in METRICS.items():
        needs = ",".join(info.needs) or "-"
        direction = {"maximize": "max", "minimize": "min", None: "-"}[info.direction]
        rows.append((name, info.scope, direction, needs, info.summary))
    print_rows(("name", "scope", "better", "needs", "what it measures"), rows)
    return 0


def spaces(args: argparse.Namespace) -> int:
    import yaml

    from codenas.spaces import SPACES

    print_rows(("name", "what it samples"), [(n, c.summary) for n, c in SPACES.items()])
    for name, cls in SPACES.items():
        print(f"\nkeys of space {name!r} (their defaults; set with --set space.KEY=VALUE):")
        defaults = cls.config_model().model_dump(mode="json")
        rows = []
        for key, field in cls.config_model.model_fields.items():
            if key == "name":
                continue
            value = yaml.safe_dump(defaults.get(key), default_flow_style=True, width=1000)
            value = value.strip().removesuffix("...").strip()
            rows.append((f"  {key}", value, field.description or ""))
        print_rows(("  key", "default", "meaning"), rows)
    return 0


def datasets(args: argparse.Namespace) -> int:
    from codenas.data import DATASETS

    rows = [
        (n, {True: "yes", False: "no", None: "if given"}[e.factors], e.summary)
        for n, e in DATASETS.items()
    ]
    print_rows(("name", "factors", "what it is"), rows)
    return 0
