"""equilibria.common: small services every layer may use (imports point only down to it).

- `common.config`: typed configs (`Config`), the one checker, one-line `ConfigError`s.
- `common.yamlio`: YAML 1.2 read safely, with size and depth limits and line numbers.
- `common.limits`: the stated limits (file sizes, memory, counts) and the checks that apply them.
"""
