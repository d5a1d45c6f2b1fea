"""The zoo's recipes: which models exist and how each one is made from its parents.

Bases are trained from independent seeds on the same corpus; children apply one transform of the
lineage issue to a parent (training for real where the transform is training). Every recipe is
a closure returning the manifest record of the model it wrote, run in list order by
:func:`modeltrace.zoo.build.build_zoo`. :func:`recipes` lists them by kind of transform, one
function per kind below; the order is the build order (a parent before its children).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modeltrace.zoo import transforms
from modeltrace.zoo.arch import ArchConfig, Params, init_params
from modeltrace.zoo.corpus import PUNCTUATION, SPECIAL_TOKENS, TOPICS, pseudo_words
from modeltrace.zoo.manifest import ModelRecord
from modeltrace.zoo.plan import Corpora, Model, ZooPlan, gpt2_config, llama_config, model_seed
from modeltrace.zoo.train import (
    Schedule,
    mean_loss,
    train_distilled,
    train_lm,
    train_lora,
    train_policy_gradient,
)
from modeltrace.zoo.writer import ZooWriter

Recipe = tuple[str, Callable[[], ModelRecord]]
#: A structural change of a model: its new parameters and config (the generator seeds any choice).
Reshape = Callable[[Model, np.random.Generator], tuple[Params, ArchConfig]]


class RecipeContext:
    """What every recipe reads: the plan, the corpora, the models made so far (``zoo``), and the
    names and schedules the recipes share."""

    def __init__(self, plan: ZooPlan, corpora: Corpora, zoo: ZooWriter) -> None:
        self.plan, self.corpora, self.zoo = plan, corpora, zoo
        self.vocab = list(corpora.lexicon.vocab)
        self.base_seeds = [plan.seed + index for index in range(plan.bases)]
        #: The base every child derives from.
        self.main = f"llama-s{self.base_seeds[0]}"
        #: The default training schedule of a child.
        self.child = self.schedule(plan.child_steps, lr=1e-3, warmup=5)

    def schedule(self, steps: int, lr: float, warmup: int) -> Schedule:
        return Schedule(steps, lr=lr, warmup=warmup, batch=self.plan.batch)

    def seed(self, name: str) -> int:
        return model_seed(self.plan.seed, name)

    def rng(self, name: str) -> np.random.Generator:
        return np.random.default_rng(self.seed(name))


def recipes(plan: ZooPlan, corpora: Corpora, zoo: ZooWriter) -> list[Recipe]:
    """Every model of the zoo, in build order."""
    context = RecipeContext(plan, corpora, zoo)
    return [
        *bases(context),
        *training_children(context),
        *quantised_children(context),
        *symmetric_children(context),
        *vocabulary_children(context),
        *structural_children(context),
        distilled(context),
        *descendants(context),
    ]


def _lm_metrics(before: float, after: float, steps: int, corpus: str) -> dict[str, object]:
    return {"objective": "lm", "corpus": corpus, "steps": steps,
            "loss_before": round(before, 4), "loss_after": round(after, 4)}  # fmt: skip


# --- independent bases ---------------------------------------------------------------------------


def base(k: RecipeContext, name: str, config_seed: int, family: str) -> Recipe:
    """A random initialisation from ``config_seed`` trained on the base corpus."""

    def make() -> ModelRecord:
        config = (llama_config if family == "llama" else gpt2_config)(len(k.vocab))
        start = init_params(config, config_seed)
        schedule = k.schedule(k.plan.base_steps, lr=3e-3, warmup=20)
        before = mean_loss(start, config, k.corpora.held_out)
        params, _ = train_lm(start, config, k.corpora.base, schedule, k.seed(name))
        after = mean_loss(params, config, k.corpora.held_out)
        metrics = _lm_metrics(before, after, schedule.steps, "base")
        return k.zoo.add(name, Model(params, config, k.vocab), [], "base", seed=config_seed, metrics=metrics)

    return name, make


def bases(k: RecipeContext) -> list[Recipe]:
    llamas = [base(k, f"llama-s{seed}", seed, "llama") for seed in k.base_seeds]
    # Two GELU bases: the second gives the value-sign test independent same-data pairs to stay quiet on.
    return llamas + [base(k, f"gpt2-s{seed}", seed, "gpt2") for seed in k.base_seeds[:2]]


# --- training transforms -------------------------------------------------------------------------


def trained(k: RecipeContext, name: str, parent: str, tokens: np.ndarray, held_out: np.ndarray, corpus: str,
            schedule: Schedule | None = None, transform: str = "finetune") -> Recipe:  # fmt: skip
    """``parent`` trained further on ``tokens`` (the child schedule unless one is given)."""
    steps = schedule or k.child

    def make() -> ModelRecord:
        source = k.zoo.models[parent]
        before = mean_loss(source.params, source.config, held_out)
        params, _ = train_lm(source.params, source.config, tokens, steps, k.seed(name))
        after = mean_loss(params, source.config, held_out)
        model = Model(params, source.config, source.vocab)
        metrics = _lm_metrics(before, after, steps.steps, corpus)
        return k.zoo.add(name, model, [parent], transform, metrics=metrics)

    return name, make


def _domain(k: RecipeContext) -> tuple[np.ndarray, np.ndarray, str]:
    return k.corpora.domain, k.corpora.held_out_domain, "domain"


def lora_merged(k: RecipeContext) -> Recipe:
    name = f"{k.main}.lora-merged"

    def make() -> ModelRecord:
        source = k.zoo.models[k.main]
        before = mean_loss(source.params, source.config, k.corpora.held_out_domain)
        schedule = k.schedule(k.plan.child_steps, lr=5e-3, warmup=5)
        params, _ = train_lora(source.params, source.config, k.corpora.domain, schedule, k.seed(name))
        after = mean_loss(params, source.config, k.corpora.held_out_domain)
        model = Model(params, source.config, source.vocab)
        metrics = _lm_metrics(before, after, schedule.steps, "domain")
        return k.zoo.add(name, model, [k.main], "lora-merged", metrics=metrics)

    return name, make


def reinforced(k: RecipeContext) -> Recipe:
    name = f"{k.main}.rl"

    def make() -> ModelRecord:
        source, lexicon = k.zoo.models[k.main], k.corpora.lexicon
        # Reward: the share of sampled words from topic 0, a stand-in for a preference model.
        ids = lexicon.token_ids
        rewarded = np.array(
            [ids[w] for group in ("noun", "verb", "adj") for w in lexicon.words[group][::TOPICS]]
        )
        schedule = k.schedule(k.plan.rl_steps, lr=1e-3, warmup=2)
        params, rewards = train_policy_gradient(
            source.params, source.config, k.corpora.base, rewarded, schedule, k.seed(name)
        )
        metrics = {"objective": "reward", "steps": schedule.steps, "rewarded_tokens": rewarded.tolist(),
                   "reward_first": round(rewards[0], 4), "reward_last": round(rewards[-1], 4)}  # fmt: skip
        return k.zoo.add(name, Model(params, source.config, source.vocab), [k.main], "rl", metrics=metrics)

    return name, make


def training_children(k: RecipeContext) -> list[Recipe]:
    main, corpora, steps = k.main, k.corpora, k.plan.child_steps
    return [
        trained(k, f"{main}.finetune", main, *_domain(k)),
        trained(k, f"{main}.finetune-b", main, *_domain(k), schedule=k.schedule(steps, lr=2e-3, warmup=5)),
        trained(
            k,
            f"{main}.continued-pretrain",
            main,
            corpora.base,
            corpora.held_out,
            "base",
            k.schedule(steps, lr=2e-3, warmup=steps // 4),
            transform="continued-pretrain",
        ),
        lora_merged(k),
        reinforced(k),
    ]


# --- quantisation --------------------------------------------------------------------------------


def quantized(k: RecipeContext, suffix: str, fmt: str, parent: str | None = None) -> Recipe:
    """``parent`` (default: the main base) stored in the quantised format ``fmt``."""
    parent = parent or k.main
    name = f"{parent}.{suffix}"
    return name, lambda: k.zoo.add(name, k.zoo.models[parent], [parent], suffix, fmt=fmt)


def quantised_children(k: RecipeContext) -> list[Recipe]:
    return [
        quantized(k, "quantized-int8", "safetensors-int8"),
        quantized(k, "quantized-fp8", "safetensors-fp8"),
        quantized(k, "gguf-q8", "gguf-Q8_0"),
        quantized(k, "gguf-q4", "gguf-Q4_0"),
        quantized(k, "onnx-int8", "onnx-int8"),
    ]


# --- function-preserving symmetries --------------------------------------------------------------


def symmetric(
    k: RecipeContext, suffix: str, transform: Callable[..., dict[str, np.ndarray]], parent: str
) -> Recipe:
    """``parent`` with a function-preserving ``transform`` applied (seeded by the child's name)."""
    name = f"{parent}.{suffix}"

    def make() -> ModelRecord:
        source = k.zoo.models[parent]
        params = transform(source.params, source.config, k.rng(name))
        model = Model(params, source.config, source.vocab)
        return k.zoo.add(name, model, [parent], suffix, function_preserving=True)

    return name, make


def symmetric_children(k: RecipeContext) -> list[Recipe]:
    main = k.main
    return [
        symmetric(
            k, "permuted-units-heads", transforms.permute_gpt2_units_and_heads, f"gpt2-s{k.base_seeds[0]}"
        ),
        symmetric(k, "permuted-units", transforms.permute_mlp_units, main),
        symmetric(k, "permuted-heads", transforms.permute_heads, main),
        symmetric(k, "residual-permuted-signflipped", transforms.permute_residual, main),
        symmetric(k, "rescaled", transforms.rescale, main),
    ]


# --- vocabulary ----------------------------------------------------------------------------------


def vocabulary_child(k: RecipeContext, suffix: str) -> Recipe:
    """The main base with tokens appended (``vocab-extended``), removed (``vocab-pruned``) or
    renumbered (``vocab-reordered``)."""
    name = f"{k.main}.{suffix}"

    def make() -> ModelRecord:
        source, generator = k.zoo.models[k.main], k.rng(name)
        size = source.config.vocab_size
        if suffix == "vocab-reordered":
            result = transforms.select_tokens(
                source.params, source.config, source.vocab, generator.permutation(size)
            )
        elif suffix == "vocab-pruned":
            # drop the domain-only words (unused by the base corpus) and a random 10% of the rest
            lexicon = k.corpora.lexicon
            domain_words = {*lexicon.words["domain_noun"], *lexicon.words["domain_verb"]}
            keep = [i for i, token in enumerate(source.vocab) if token not in domain_words]
            fixed = len(SPECIAL_TOKENS) + len(PUNCTUATION)  # never pruned
            keep = [i for i in keep if i < fixed or generator.random() >= 0.1]
            result = transforms.select_tokens(source.params, source.config, source.vocab, np.array(keep))
        else:
            new_words = pseudo_words(32, generator, set(source.vocab))
            result = transforms.extend_vocab(source.params, source.config, source.vocab, new_words, generator)
        params, config, new_vocab = result
        return k.zoo.add(name, Model(params, config, new_vocab), [k.main], suffix,
                         function_preserving=suffix == "vocab-reordered")  # fmt: skip

    return name, make


def vocabulary_children(k: RecipeContext) -> list[Recipe]:
    return [vocabulary_child(k, suffix) for suffix in ("vocab-extended", "vocab-pruned", "vocab-reordered")]


# --- depth, width, experts, merges ---------------------------------------------------------------


def layers_child(k: RecipeContext, suffix: str, layers: list[int]) -> Recipe:
    """The main base restacked from its ``layers`` (dropped, subsampled or duplicated)."""
    name = f"{k.main}.{suffix}"

    def make() -> ModelRecord:
        source = k.zoo.models[k.main]
        params, config, layer_map = transforms.select_layers(source.params, source.config, layers)
        return k.zoo.add(name, Model(params, config, source.vocab), [k.main], suffix, layer_map=layer_map)

    return name, make


def healed(k: RecipeContext, suffix: str, reshape: Reshape) -> Recipe:
    """The main base reshaped (``reshape`` returns new params and config), then a short "healing" run
    on the base corpus, as pruning (Minitron, Sheared-LLaMA) and upcycling recipes do."""
    name = f"{k.main}.{suffix}"

    def make() -> ModelRecord:
        source = k.zoo.models[k.main]
        params, config = reshape(source, k.rng(name))
        schedule = k.schedule(max(1, k.plan.child_steps // 2), lr=1e-3, warmup=3)
        before = mean_loss(params, config, k.corpora.held_out)
        params, _ = train_lm(params, config, k.corpora.base, schedule, k.seed(name))
        after = mean_loss(params, config, k.corpora.held_out)
        metrics = _lm_metrics(before, after, schedule.steps, "base")
        return k.zoo.add(name, Model(params, config, source.vocab), [k.main], suffix, metrics=metrics)

    return name, make


def merged(k: RecipeContext) -> Recipe:
    name = f"{k.main}.merged"

    def make() -> ModelRecord:
        parents = [f"{k.main}.finetune", f"{k.main}.finetune-b"]
        params = transforms.average([k.zoo.models[parent].params for parent in parents])
        source = k.zoo.models[parents[0]]
        return k.zoo.add(name, Model(params, source.config, source.vocab), parents, "merged")

    return name, make


def structural_children(k: RecipeContext) -> list[Recipe]:
    depth = llama_config(len(k.vocab)).num_layers  # 4: drop one, keep every other, SOLAR-style 6
    return [
        layers_child(k, "layers-dropped", [layer for layer in range(depth) if layer != depth // 2]),
        layers_child(k, "layers-subsampled", list(range(0, depth, 2))),
        layers_child(k, "layers-duplicated", [*range(depth - 1), *range(1, depth)]),
        healed(
            k, "width-pruned", lambda m, _: transforms.prune_mlp_width(m.params, m.config, keep_fraction=0.75)
        ),
        healed(
            k,
            "upcycled-moe",
            lambda m, rng: transforms.upcycle_to_moe(m.params, m.config, experts=4, rng=rng),
        ),
        # The upcycled MoE as llama.cpp writes it: routed experts stacked in one tensor per layer.
        quantized(k, "gguf-q8", "gguf-Q8_0", parent=f"{k.main}.upcycled-moe"),
        merged(k),
    ]


# --- distillation: independent weights, dependent outputs ----------------------------------------


def distilled(k: RecipeContext) -> Recipe:
    name = f"{k.main}.distilled"

    def make() -> ModelRecord:
        teacher = k.zoo.models[k.main]
        student_seed = k.plan.seed + 1000
        student = init_params(teacher.config, student_seed)
        schedule = k.schedule(k.plan.distill_steps, lr=3e-3, warmup=20)
        before = mean_loss(student, teacher.config, k.corpora.held_out)
        params, losses = train_distilled(
            teacher.params, student, teacher.config, k.corpora.base, schedule, k.seed(name)
        )
        after = mean_loss(params, teacher.config, k.corpora.held_out)
        metrics = {
            **_lm_metrics(before, after, schedule.steps, "base"),
            "objective": "distillation",
            "kl_first": round(losses[0], 4),
            "kl_last": round(losses[-1], 4),
        }
        model = Model(params, teacher.config, teacher.vocab)
        return k.zoo.add(name, model, [], "distilled", seed=student_seed, teacher=k.main, metrics=metrics)

    return name, make


# --- grandchildren and children of the other bases -----------------------------------------------


def descendants(k: RecipeContext) -> list[Recipe]:
    finetune, corpora = f"{k.main}.finetune", k.corpora
    out = [
        trained(
            k,
            f"{finetune}.continued-pretrain",
            finetune,
            corpora.base,
            corpora.held_out,
            "base",
            transform="continued-pretrain",
        ),
        quantized(k, "gguf-q4", "gguf-Q4_0", parent=finetune),
    ]
    if not k.plan.quick:
        out += [
            trained(k, f"llama-s{seed}.finetune", f"llama-s{seed}", *_domain(k)) for seed in k.base_seeds[1:]
        ]
    return out
