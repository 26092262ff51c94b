import sys, csv, random, statistics as st
sys.argv_models = sys.argv[2].split(",")
exec(open('/tmp/probe/gap.py').read().split('for src in')[0])
mdir = sys.argv[1]  # mitigated dir
tr = list(csv.DictReader(open(f"{mdir}/train_rows.tsv"), delimiter="\t"))
cf_lines = {r["line"] for r in tr if r["origin"] == "counterfactual"}
corpus = [r for r in tr if r["origin"] == "corpus"]
held = [(r["text"], r["label"]) for r in corpus if r["line"] not in cf_lines]
ps = pairs(held)
print("held-out pairs", len(ps))
for m in sys.argv_models:
    a = margins(m, [p[0] for p in ps]); b = margins(m, [p[1] for p in ps])
    # log-odds of the row's label: orig minus copy
    d = [(aa - bb) if p[2] == "positive" else (bb - aa) for aa, bb, p in zip(a, b, ps)]
    print(f"  {m[-45:]}: label log-odds drop orig->copy mean {st.mean(d):+.3f}")
