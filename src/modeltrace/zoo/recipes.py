"""The zoo's recipes: which models exist and how each one is made from its parents.

Bases are trained from independent seeds on the same corpus; children apply one transform of the
lineage issue to a parent (training for real where the transform is training). Every recipe is
a closure returning the manifest record of the model it wrote, run in list order by
:func:`modeltrace.zoo.build.build_zoo`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modeltrace.zoo import transforms
from modeltrace.zoo.arch import init_params
from modeltrace.zoo.build import (
    Corpora,
    Model,
    ZooPlan,
    ZooWriter,
    gpt2_config,
    llama_config,
    model_seed,
)
from modeltrace.zoo.corpus import PUNCTUATION, SPECIAL_TOKENS, TOPICS, pseudo_words
from modeltrace.zoo.manifest import ModelRecord
from modeltrace.zoo.train import (
    Schedule,
    mean_loss,
    train_distilled,
    train_lm,
    train_lora,
    train_policy_gradient,
)

Recipe = tuple[str, Callable[[], ModelRecord]]


def _lm_metrics(before: float, after: float, steps: int, corpus: str) -> dict[str, object]:
    return {"objective": "lm", "corpus": corpus, "steps": steps,
            "loss_before": round(before, 4), "loss_after": round(after, 4)}  # fmt: skip


def recipes(plan: ZooPlan, corpora: Corpora, zoo: ZooWriter) -> list[Recipe]:
    """Every model of the zoo, in build order."""
    vocab = list(corpora.lexicon.vocab)
    base_seeds = [plan.seed + index for index in range(plan.bases)]
    main = f"llama-s{base_seeds[0]}"
    child = Schedule(plan.child_steps, lr=1e-3, warmup=5, batch=plan.batch)
    out: list[Recipe] = []

    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng(model_seed(plan.seed, name))

    def trained(name: str, parent: str, tokens: np.ndarray, held_out: np.ndarray, corpus: str,
                schedule: Schedule = child, transform: str = "finetune") -> Recipe:  # fmt: skip
        def make() -> ModelRecord:
            source = zoo.models[parent]
            before = mean_loss(source.params, source.config, held_out)
            params, _ = train_lm(source.params, source.config, tokens, schedule, model_seed(plan.seed, name))
            after = mean_loss(params, source.config, held_out)
            model = Model(params, source.config, source.vocab)
            metrics = _lm_metrics(before, after, schedule.steps, corpus)
            return zoo.add(name, model, [parent], transform, metrics=metrics)

        return name, make

    # --- independent bases -----------------------------------------------------------------------
    def base(name: str, config_seed: int, family: str) -> Recipe:
        def make() -> ModelRecord:
            config = (llama_config if family == "llama" else gpt2_config)(len(vocab))
            start = init_params(config, config_seed)
            schedule = Schedule(plan.base_steps, lr=3e-3, warmup=20, batch=plan.batch)
            before = mean_loss(start, config, corpora.held_out)
            params, _ = train_lm(start, config, corpora.base, schedule, model_seed(plan.seed, name))
            after = mean_loss(params, config, corpora.held_out)
            metrics = _lm_metrics(before, after, schedule.steps, "base")
            return zoo.add(name, Model(params, config, vocab), [], "base", seed=config_seed, metrics=metrics)

        return name, make

    out += [base(f"llama-s{seed}", seed, "llama") for seed in base_seeds]
    # Two GELU bases: the second gives the value-sign test independent same-data pairs to stay quiet on.
    out += [base(f"gpt2-s{seed}", seed, "gpt2") for seed in base_seeds[:2]]

    # --- training transforms ---------------------------------------------------------------------
    domain = (corpora.domain, corpora.held_out_domain, "domain")
    out.append(trained(f"{main}.finetune", main, *domain))
    out.append(
        trained(
            f"{main}.finetune-b",
            main,
            *domain,
            schedule=Schedule(plan.child_steps, 2e-3, 5, batch=plan.batch),
        )
    )
    out.append(trained(f"{main}.continued-pretrain", main, corpora.base, corpora.held_out, "base",
                       Schedule(plan.child_steps, lr=2e-3, warmup=plan.child_steps // 4, batch=plan.batch),
                       transform="continued-pretrain"))  # fmt: skip

    def lora() -> ModelRecord:
        name, source = f"{main}.lora-merged", zoo.models[main]
        before = mean_loss(source.params, source.config, corpora.held_out_domain)
        schedule = Schedule(plan.child_steps, lr=5e-3, warmup=5, batch=plan.batch)
        params, _ = train_lora(
            source.params, source.config, corpora.domain, schedule, model_seed(plan.seed, name)
        )
        after = mean_loss(params, source.config, corpora.held_out_domain)
        model = Model(params, source.config, source.vocab)
        return zoo.add(
            name, model, [main], "lora-merged", metrics=_lm_metrics(before, after, schedule.steps, "domain")
        )

    out.append((f"{main}.lora-merged", lora))

    def rl() -> ModelRecord:
        name, source = f"{main}.rl", zoo.models[main]
        # Reward: the share of sampled words from topic 0, a stand-in for a preference model.
        ids = corpora.lexicon.token_ids
        rewarded = np.array(
            [ids[w] for group in ("noun", "verb", "adj") for w in corpora.lexicon.words[group][::TOPICS]]
        )
        schedule = Schedule(plan.rl_steps, lr=1e-3, warmup=2, batch=plan.batch)
        params, rewards = train_policy_gradient(
            source.params, source.config, corpora.base, rewarded, schedule, model_seed(plan.seed, name)
        )
        metrics = {"objective": "reward", "steps": schedule.steps, "rewarded_tokens": rewarded.tolist(),
                   "reward_first": round(rewards[0], 4), "reward_last": round(rewards[-1], 4)}  # fmt: skip
        return zoo.add(name, Model(params, source.config, source.vocab), [main], "rl", metrics=metrics)

    out.append((f"{main}.rl", rl))

    # --- quantisation --------------------------------------------------------------------------
    def quantized(suffix: str, fmt: str, parent: str = main) -> Recipe:
        name = f"{parent}.{suffix}"
        return name, lambda: zoo.add(name, zoo.models[parent], [parent], suffix, fmt=fmt)

    out += [
        quantized("quantized-int8", "safetensors-int8"),
        quantized("quantized-fp8", "safetensors-fp8"),
        quantized("gguf-q8", "gguf-Q8_0"),
        quantized("gguf-q4", "gguf-Q4_0"),
        quantized("onnx-int8", "onnx-int8"),
    ]

    # --- function-preserving symmetries --------------------------------------------------------
    def symmetric(suffix: str, transform: Callable[..., dict[str, np.ndarray]]) -> Recipe:
        name = f"{main}.{suffix}"

        def make() -> ModelRecord:
            source = zoo.models[main]
            params = transform(source.params, source.config, rng(name))
            return zoo.add(
                name, Model(params, source.config, source.vocab), [main], suffix, function_preserving=True
            )

        return name, make

    def gpt2_permuted() -> ModelRecord:
        parent = f"gpt2-s{base_seeds[0]}"
        name, source = f"{parent}.permuted-units-heads", zoo.models[parent]
        params = transforms.permute_gpt2_units_and_heads(source.params, source.config, rng(name))
        return zoo.add(name, Model(params, source.config, source.vocab), [parent], "permuted-units-heads",
                       function_preserving=True)  # fmt: skip

    out.append((f"gpt2-s{base_seeds[0]}.permuted-units-heads", gpt2_permuted))
    out += [
        symmetric("permuted-units", transforms.permute_mlp_units),
        symmetric("permuted-heads", transforms.permute_heads),
        symmetric("residual-permuted-signflipped", transforms.permute_residual),
        symmetric("rescaled", transforms.rescale),
    ]

    # --- vocabulary ----------------------------------------------------------------------------
    def vocab_child(suffix: str) -> Recipe:
        name = f"{main}.{suffix}"

        def make() -> ModelRecord:
            source, generator = zoo.models[main], rng(name)
            size = source.config.vocab_size
            if suffix == "vocab-reordered":
                result = transforms.select_tokens(
                    source.params, source.config, source.vocab, generator.permutation(size)
                )
            elif suffix == "vocab-pruned":
                # drop the domain-only words (unused by the base corpus) and a random 10% of the rest
                lexicon = corpora.lexicon
                domain_words = {*lexicon.words["domain_noun"], *lexicon.words["domain_verb"]}
                keep = [i for i, token in enumerate(source.vocab) if token not in domain_words]
                fixed = len(SPECIAL_TOKENS) + len(PUNCTUATION)  # never pruned
                keep = [i for i in keep if i < fixed or generator.random() >= 0.1]
                result = transforms.select_tokens(source.params, source.config, source.vocab, np.array(keep))
            else:
                new_words = pseudo_words(32, generator, set(source.vocab))
                result = transforms.extend_vocab(
                    source.params, source.config, source.vocab, new_words, generator
                )
            params, config, new_vocab = result
            return zoo.add(name, Model(params, config, new_vocab), [main], suffix,
                           function_preserving=suffix == "vocab-reordered")  # fmt: skip

        return name, make

    out += [vocab_child("vocab-extended"), vocab_child("vocab-pruned"), vocab_child("vocab-reordered")]

    # --- depth, width, experts -----------------------------------------------------------------
    def layers_child(suffix: str, layers: list[int]) -> Recipe:
        name = f"{main}.{suffix}"

        def make() -> ModelRecord:
            source = zoo.models[main]
            params, config, layer_map = transforms.select_layers(source.params, source.config, layers)
            return zoo.add(name, Model(params, config, source.vocab), [main], suffix, layer_map=layer_map)

        return name, make

    depth = llama_config(len(vocab)).num_layers  # 4: drop one, keep every other, SOLAR-style 6
    out += [
        layers_child("layers-dropped", [layer for layer in range(depth) if layer != depth // 2]),
        layers_child("layers-subsampled", list(range(0, depth, 2))),
        layers_child("layers-duplicated", [*range(depth - 1), *range(1, depth)]),
    ]

    def width_pruned() -> ModelRecord:
        name, source = f"{main}.width-pruned", zoo.models[main]
        params, config = transforms.prune_mlp_width(source.params, source.config, keep_fraction=0.75)
        # a short "healing" run on the base corpus, as pruning recipes (Minitron, Sheared-LLaMA) do
        schedule = Schedule(max(1, plan.child_steps // 2), lr=1e-3, warmup=3, batch=plan.batch)
        before = mean_loss(params, config, corpora.held_out)
        params, _ = train_lm(params, config, corpora.base, schedule, model_seed(plan.seed, name))
        metrics = _lm_metrics(before, mean_loss(params, config, corpora.held_out), schedule.steps, "base")
        return zoo.add(name, Model(params, config, source.vocab), [main], "width-pruned", metrics=metrics)

    out.append((f"{main}.width-pruned", width_pruned))

    def upcycled() -> ModelRecord:
        name, source = f"{main}.upcycled-moe", zoo.models[main]
        params, config = transforms.upcycle_to_moe(source.params, source.config, experts=4, rng=rng(name))
        schedule = Schedule(max(1, plan.child_steps // 2), lr=1e-3, warmup=3, batch=plan.batch)
        before = mean_loss(params, config, corpora.held_out)
        params, _ = train_lm(params, config, corpora.base, schedule, model_seed(plan.seed, name))
        metrics = _lm_metrics(before, mean_loss(params, config, corpora.held_out), schedule.steps, "base")
        return zoo.add(name, Model(params, config, source.vocab), [main], "upcycled-moe", metrics=metrics)

    out.append((f"{main}.upcycled-moe", upcycled))
    # The upcycled MoE as llama.cpp writes it: routed experts stacked in one tensor per layer.
    out.append(quantized("gguf-q8", "gguf-Q8_0", parent=f"{main}.upcycled-moe"))

    def merged() -> ModelRecord:
        parents = [f"{main}.finetune", f"{main}.finetune-b"]
        params = transforms.average([zoo.models[parent].params for parent in parents])
        source = zoo.models[parents[0]]
        return zoo.add(f"{main}.merged", Model(params, source.config, source.vocab), parents, "merged")

    out.append((f"{main}.merged", merged))

    # --- distillation: independent weights, dependent outputs ----------------------------------
    def distilled() -> ModelRecord:
        name, teacher = f"{main}.distilled", zoo.models[main]
        student_seed = plan.seed + 1000
        student = init_params(teacher.config, student_seed)
        schedule = Schedule(plan.distill_steps, lr=3e-3, warmup=20, batch=plan.batch)
        before = mean_loss(student, teacher.config, corpora.held_out)
        params, losses = train_distilled(
            teacher.params, student, teacher.config, corpora.base, schedule, model_seed(plan.seed, name)
        )
        after = mean_loss(params, teacher.config, corpora.held_out)
        metrics = {
            **_lm_metrics(before, after, schedule.steps, "base"),
            "objective": "distillation",
            "kl_first": round(losses[0], 4),
            "kl_last": round(losses[-1], 4),
        }
        model = Model(params, teacher.config, teacher.vocab)
        return zoo.add(name, model, [], "distilled", seed=student_seed, teacher=main, metrics=metrics)

    out.append((f"{main}.distilled", distilled))

    # --- grandchildren and children of the other bases ----------------------------------------
    grandchild = f"{main}.finetune.continued-pretrain"
    out.append(
        trained(
            grandchild,
            f"{main}.finetune",
            corpora.base,
            corpora.held_out,
            "base",
            transform="continued-pretrain",
        )
    )
    out.append(quantized("gguf-q4", "gguf-Q4_0", parent=f"{main}.finetune"))
    if not plan.quick:
        out += [trained(f"llama-s{seed}.finetune", f"llama-s{seed}", *domain) for seed in base_seeds[1:]]
    return out
