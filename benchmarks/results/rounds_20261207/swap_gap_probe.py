import sys, random, csv, torch
from transformers import AutoTokenizer, AutoModelForSequenceClassification
from lmcritic.lexicon import find_identity_terms, swap
def rows(path):
    with open(path) as f:
        r = csv.reader(f, delimiter="\t"); next(r)
        return [(x[0], x[1]) for x in r]
def pairs(rs):
    out=[]; rng=random.Random(0)
    for t,l in rs:
        g={m.group for m in find_identity_terms(t,"gender")}
        if ("male" in g)==("female" in g): continue
        to="female" if "male" in g else "male"
        s,e=swap(t,"gender",rng,to=to)
        if e: out.append((t,s,l,to))
    return out
@torch.no_grad()
def margins(mdir, texts):
    tok=AutoTokenizer.from_pretrained(mdir); m=AutoModelForSequenceClassification.from_pretrained(mdir).eval()
    out=[]
    for i in range(0,len(texts),64):
        b=tok(texts[i:i+64],padding=True,truncation=True,max_length=64,return_tensors="pt")
        lg=m(**b).logits.log_softmax(-1); out+= (lg[:,1]-lg[:,0]).tolist()
    return out
for src in sys.argv[2:]:
    ps=pairs(rows(src)); print(src, len(ps))
    for mdir in sys.argv[1].split(","):
        a=margins(mdir,[p[0] for p in ps]); b=margins(mdir,[p[1] for p in ps])
        # gap: margin(pos) for female version minus male version
        d=[ (bb-aa) if p[3]=="female" else (aa-bb) for aa,bb,p in zip(a,b,ps)]  # female - male
        import statistics as st
        print(f"  {mdir[-40:]}: mean(female-male pos margin)={st.mean(d):+.3f} mean|d|={st.mean(map(abs,d)):.3f}")

def detail(mdir, src):
    from collections import defaultdict
    ps=pairs(rows(src)); a=margins(mdir,[p[0] for p in ps]); b=margins(mdir,[p[1] for p in ps])
    by=defaultdict(list)
    for aa,bb,p in zip(a,b,ps):
        d=(bb-aa) if p[3]=="female" else (aa-bb)
        terms=tuple(sorted({m.text.lower() if hasattr(m,'text') else str(m) for m in find_identity_terms(p[0],"gender")}))
        by[terms].append(d)
    for k,v in sorted(by.items(), key=lambda kv: sum(kv[1])/len(kv[1])):
        print(f"   {k}: n={len(v)} mean={sum(v)/len(v):+.2f}")
