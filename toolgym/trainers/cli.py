"""``toolgym train``, ``toolgym warm-start`` and ``toolgym demo``."""

from __future__ import annotations

import argparse
import dataclasses

from toolgym.envs.cli import parse_overrides  # loaded by the `toolgym` command in any case
from toolgym.envs.errors import did_you_mean
from toolgym.trainers.names import ALGORITHMS, CREDITS  # no torch or trl: the parser stays light


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a policy with GRPO, PPO or a critic-free estimator on toolgym envs "
                                            "(TRL, LoRA, vLLM optional)",
                              description="Train with the config's algorithm (grpo, ppo, rloo, ...). Overrides: "
                                          "key=value, dotted for nested keys (grpo.learning_rate=3e-4 credit=step "
                                          "lora.r=8).")
    p.add_argument("--config", help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue from the last checkpoint in output_dir (or from CHECKPOINT)")
    p.add_argument("--help-config", action="store_true", help="list the config keys and exit")
    p.set_defaults(handler=_train)

    w = subparsers.add_parser("warm-start", help="supervised warm start on an env's oracle trajectories (LoRA), "
                                                 "before RL",
                              description="Fine-tune MODEL on oracle episodes of ENV rendered in its own chat "
                                          "template, loss on the assistant tokens only; writes the adapter, the "
                                          "tokenizer, merged/ and metrics.json to OUT (a complete OUT is reused).")
    w.add_argument("--model", help="the model: a .gguf file or a directory holding one, a model or adapter "
                                   "directory, or a hub id")
    w.add_argument("--env", help="a registered env id, e.g. HotpotQA-v0")
    w.add_argument("--chat-template", default=None,
                   help="for a model without one (a base model's GGUF): TRL's template name or a .jinja file")
    w.add_argument("--kwargs", nargs="*", metavar="KEY=VALUE", default=[],
                   help="env constructor arguments, e.g. data_files=dev.json corpus=example limit=120")
    w.add_argument("--system-prompt", default=None, help="replace the env's system message")
    w.add_argument("--out", help="output directory")
    _warm_start_flags(w)
    w.set_defaults(handler=_warm_start)

    d = subparsers.add_parser("demo", help="tiny model -> warm start -> GRPO on CPU; prints and plots before/after",
                              description="The CPU demo on the synthetic MultiHopQA world. Overrides: key=value "
                                          "with DemoConfig fields (e.g. seed=1 credit=step rl_steps=80).")
    d.add_argument("overrides", nargs="*", metavar="key=value", help="DemoConfig overrides")
    d.add_argument("--output-dir", default=None, help="where results.json, demo.png and checkpoints go")
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--credit", choices=CREDITS, default=None)
    d.add_argument("--algorithm", choices=ALGORITHMS,
                   default=None, help="grpo (default), ppo, or a critic-free estimator")
    d.add_argument("--compare", default=None, metavar="ALGORITHMS",
                   help="comma-separated algorithms (or 'all') trained from one warm start; writes curves.png. "
                        "'credit': outcome, step and gigpo credit and PPO (arms=), seeds= seeds each; writes credit.png")
    d.add_argument("--help-config", action="store_true", help="list the demo settings and exit")
    d.set_defaults(handler=_demo)


def _train(args) -> int:
    from toolgym.trainers.config import describe

    if args.help_config:
        print(describe())
        return 0
    if not args.config:
        raise ValueError("--config is required (e.g. --config configs/demo_cpu.yaml)")
    from toolgym.trainers.api import train

    train(args.config, overrides=args.overrides, resume=args.resume)  # validates everything before the model loads
    return 0


# The WarmStartConfig fields that are flags of `toolgym warm-start`, with their types (the config
# module is not imported to build the parser: `toolgym --help` stays light).
_WARM_FLAGS = {"n_episodes": int, "epochs": float, "steps": int, "lr": float, "scheduler": str, "batch": int,
               "max_completion_tokens": int, "rollout_batch": int, "seed": int, "logging_steps": int}


def _warm_start_flags(parser: argparse.ArgumentParser) -> None:
    for name, kind in _WARM_FLAGS.items():
        flags = ["--" + name.replace("_", "-")] + (["--n"] if name == "n_episodes" else [])
        parser.add_argument(*flags, type=kind, default=None, dest=name,
                            help=f"warm_start.{name} (--help-config: what each means and its default)")
    parser.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default 16)")
    parser.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default 32)")
    parser.add_argument("--no-lora", action="store_true", help="train all weights instead of a LoRA adapter")
    parser.add_argument("--no-merge", action="store_true", help="with LoRA, do not save <out>/merged")
    parser.add_argument("--help-config", action="store_true", help="list the warm-start settings and exit")


def _warm_start(args) -> int:
    from toolgym.trainers.config import EnvSpec, WarmStartConfig, describe_fields
    from toolgym.trainers.warm_start import warm_start

    if args.help_config:
        print("\n".join(describe_fields(WarmStartConfig, "", defaults=True)))
        return 0
    if not (args.model and args.env and args.out):
        raise ValueError("--model, --env and --out are required, e.g. toolgym warm-start --model DIR "
                         "--env MultiHopQA-v0 --out runs/warm_start")
    kw = {name: getattr(args, name) for name in _WARM_FLAGS if getattr(args, name) is not None}
    if args.no_merge:
        kw["merge"] = False
    lora = {k: v for k, v in (("r", args.lora_r), ("alpha", args.lora_alpha)) if v is not None}
    if args.no_lora:
        lora["enabled"] = False
    cfg = WarmStartConfig(**kw, lora=lora, output_dir=args.out)  # everything is checked before the model loads
    spec = EnvSpec(args.env, parse_overrides(args.kwargs), system_prompt=args.system_prompt)
    warm_start(args.model, [spec], cfg, chat_template=args.chat_template)
    return 0


def _demo(args) -> int:
    from toolgym.trainers.demo import DemoConfig, renamed_setting_error

    fields = {f.name: f for f in dataclasses.fields(DemoConfig)}
    if args.help_config:
        for f in fields.values():
            print(f"  {f.name} (default {getattr(DemoConfig(), f.name)!r}): {f.metadata.get('help', '')}")
        return 0
    kw = {}
    for item in args.overrides:
        key, _, raw = item.partition("=")
        top, dot, sub = key.partition(".")
        if dot and _ and top in fields and isinstance(getattr(DemoConfig(), top), dict):  # kwargs.name=YAML value
            import yaml

            kw.setdefault(top, {})[sub] = yaml.safe_load(raw)
            continue
        if (renamed := renamed_setting_error(key)) is not None:
            raise renamed
        if key not in fields or not _:
            raise ValueError(f"unknown setting {item!r}.{did_you_mean(key, fields)} See toolgym demo --help-config.")
        try:
            kw[key] = _parse(raw, fields[key].default)
        except ValueError:
            default = getattr(DemoConfig(), key)
            raise ValueError(f"{key}={raw!r} is not a valid {type(default).__name__} "
                             f"(default {default!r}).") from None
    for key in ("output_dir", "seed", "credit", "algorithm"):
        if getattr(args, key) is not None:
            kw[key] = getattr(args, key)
    from toolgym.trainers.demo import compare_algorithms, run_demo

    by_credit = args.compare == "credit"
    algorithms = ([] if not args.compare or by_credit else list(ALGORITHMS) if args.compare == "all"
                  else args.compare.split(","))
    cfg = DemoConfig(**kw)  # settings are checked before any work
    for a in algorithms:
        DemoConfig(algorithm=a)
    if by_credit:
        from toolgym.trainers.demo import compare_credit

        compare_credit(cfg)
    elif algorithms:
        compare_algorithms(cfg, algorithms)
    else:
        run_demo(cfg)
    return 0


def _parse(raw: str, default):
    if isinstance(default, bool):  # a typo ("ture") is an error, not a silent False
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(raw)
        return raw.lower() in ("1", "true", "yes")
    if default is dataclasses.MISSING:  # a dict field: a YAML mapping, e.g. {enable_thinking: true}
        import yaml

        value = yaml.safe_load(raw)
        if not isinstance(value, dict):
            raise ValueError(raw)
        return value
    if isinstance(default, tuple):  # 0.5,0.3,0.2 or (0.5, 0.3, 0.2)
        return tuple(float(x) for x in raw.strip("()[] ").split(","))
    return type(default)(raw)
