"""TextAttack's side of ``bench_textattack.py``; runs inside ``benchmarks/.work/venv-textattack``.

Attacks the saved classifier on the given sentences with TextAttack's DeepWordBug setup (Gao et al. 2018, as in
``textattack.attack_recipes.DeepWordBugGao2018``: greedy word-importance search, repeat + stopword constraints,
Levenshtein ≤ 30) and writes one JSON line per sentence. ``--candidates native`` uses TextAttack's own four
random character edits per word; ``--shared K`` uses exactly the candidate sets lmcritic scores (its ``char``
swap: all edits, capped at 50, or with K < 50 the same seeded sample of K per word), so only the search differs.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # lmcritic.perturb (pure Python)


def shared_transformation(seed: int, k: int):
    from textattack.transformations import WordSwap

    from lmcritic.perturb.base import match_case
    from lmcritic.perturb.char import char_edits

    class SharedCharSwap(WordSwap):
        """lmcritic's candidate set for a word: char_edits (≤ 50), case-matched, a seeded sample of k."""

        def _get_replacement_words(self, word: str) -> list[str]:
            if len(word) < 3 or not word.isalpha():
                return []
            seen = []
            for new in char_edits(word)[:50]:
                new = match_case(word, new) if new.lower() != word.lower() else new
                if new and new != word and new not in seen:
                    seen.append(new)
            if k < 50 and len(seen) > k:
                seen = random.Random(f"{seed}:{word}").sample(seen, k)
            return seen

    return SharedCharSwap()


def native_transformation():
    from textattack.transformations import (
        CompositeTransformation,
        WordSwapNeighboringCharacterSwap,
        WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion,
        WordSwapRandomCharacterSubstitution,
    )

    return CompositeTransformation([WordSwapNeighboringCharacterSwap(), WordSwapRandomCharacterSubstitution(),
                                    WordSwapRandomCharacterDeletion(), WordSwapRandomCharacterInsertion()])


def build(model_dir: str, args: argparse.Namespace):
    import transformers
    from textattack import Attack
    from textattack.constraints.overlap import LevenshteinEditDistance
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.models.wrappers import HuggingFaceModelWrapper
    from textattack.search_methods import GreedyWordSwapWIR

    from lmcritic.attacks.constraints import STOPWORDS

    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    # the folder was saved by transformers 5 (tokenizer class "TokenizersBackend", unknown to 4.x): load the
    # same tokenizer.json directly
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(Path(model_dir) / "tokenizer.json"), unk_token="[UNK]", pad_token="[PAD]",
        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    wrapper = HuggingFaceModelWrapper(model, tok)
    if args.normalize:  # the model as lmcritic serves it: behind normalize_input (needs wordfreq, symspellpy)
        from lmcritic.mitigate.normalize import normalize_text

        inner = wrapper

        class Normalized(HuggingFaceModelWrapper):
            def __call__(self, text_input_list):
                return inner([normalize_text(t) for t in text_input_list])

        wrapper = Normalized(model, tok)
    goal = UntargetedClassification(wrapper, query_budget=args.budget)
    transformation = shared_transformation(args.seed, args.shared) if args.shared else native_transformation()
    constraints = [RepeatModification(), StopwordModification(stopwords=set(STOPWORDS)), LevenshteinEditDistance(30)]
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR(wir_method=args.wir))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--sentences", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--wir", default="unk", choices=["unk", "delete", "gradient"])
    ap.add_argument("--shared", type=int, default=0, help="0: TextAttack's own candidates; K: lmcritic's (50 = all)")
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--normalize", action="store_true", help="attack the model behind lmcritic's normalize_input")
    args = ap.parse_args()
    import textattack
    import torch

    torch.set_num_threads(1)
    random.seed(args.seed)
    attack = build(args.model, args)
    rows = json.loads(Path(args.sentences).read_text())
    with open(args.out, "w") as out:
        for text, label in rows:
            started = time.perf_counter()
            r = attack.attack(text, label)
            status = {"SuccessfulAttackResult": "succeeded", "FailedAttackResult": "failed",
                      "SkippedAttackResult": "skipped", "MaximizedAttackResult": "failed"}[type(r).__name__]
            if (status == "failed" and r.perturbed_result.goal_status
                    == textattack.goal_function_results.GoalFunctionResultStatus.SEARCHING):
                status = "budget" if r.perturbed_result.num_queries >= args.budget else status
            out.write(json.dumps({"text": text, "label": label, "status": status,
                                  "queries": r.perturbed_result.num_queries,
                                  "adversarial": r.perturbed_result.attacked_text.text,
                                  "seconds": time.perf_counter() - started}) + "\n")


if __name__ == "__main__":
    main()
