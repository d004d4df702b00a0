#!/usr/bin/env python3
"""Module cycles at every level: each use of crate::a::b / super::x / self::x from module m gives an
edge between the two sibling modules (children of their common ancestor) that contain m and the target."""
import os, re, sys, collections
root = sys.argv[1] if len(sys.argv)>1 else "."

def strip_tests(t):
    out=[]; lines=t.split("\n"); i=0
    while i<len(lines):
        if re.match(r"\s*#\[cfg\(test\)\]", lines[i]):
            d=0; j=i+1; st=False
            while j<len(lines):
                s=re.sub(r"//.*","",lines[j]); d+=s.count("{")-s.count("}")
                if "{" in s: st=True
                if st and d<=0: break
                if not st and s.strip().endswith(";"): break
                j+=1
            i=j+1; continue
        out.append(lines[i]); i+=1
    return re.sub(r"//.*","","\n".join(out))
crates=["crates/"+d+"/src" for d in sorted(os.listdir(os.path.join(root,"crates")))]+["src"]
for c in crates:
    base=os.path.join(root,c); mods={}
    for dp,_,fs in os.walk(base):
        for f in fs:
            if not f.endswith(".rs") or f=="tests.rs": continue
            rel=os.path.relpath(os.path.join(dp,f),base)[:-3].split(os.sep)
            if rel[-1] in ("mod","lib","main"): rel=rel[:-1]
            mods[tuple(rel)]=os.path.join(dp,f)
    edges=collections.defaultdict(set)
    def resolve(path):
        # longest prefix that is a known module
        for k in range(len(path),0,-1):
            if tuple(path[:k]) in mods: return tuple(path[:k])
        return None
    for m,f in mods.items():
        t=strip_tests(open(f).read())
        refs=[]
        for mm in re.finditer(r"\b(crate|super|self)((?:::\w+)+)(?:::\{([^}]*)\})?", t):
            head=mm.group(1); segs=mm.group(2).strip(":").split("::")
            # mod.rs / file modules: super is parent
            if head=="crate": p=[]
            elif head=="self": p=list(m)
            else: p=list(m[:-1])
            while segs and segs[0]=="super": p=p[:-1]; segs=segs[1:]
            refs.append(p+segs)
            if mm.group(3):
                for part in mm.group(3).split(","):
                    n=part.strip().split("::")
                    if n[0] and n[0] not in ("self",): refs.append(p+segs+n)
        for r in refs:
            tgt=resolve(r)
            if tgt is None or tgt==m: continue
            # common ancestor
            k=0
            while k<min(len(m),len(tgt)) and m[k]==tgt[k]: k+=1
            if k>=len(m) or k>=len(tgt): continue  # ancestor/descendant
            edges[m[:k]].add((m[k],tgt[k]))
    found=[]
    for parent,es in edges.items():
        g=collections.defaultdict(set)
        for a,b in es: g[a].add(b)
        idx={};low={};st=[];on=set();n=[0]
        def sc(v):
            idx[v]=low[v]=n[0];n[0]+=1;st.append(v);on.add(v)
            for w in g.get(v,()):
                if w not in idx: sc(w);low[v]=min(low[v],low[w])
                elif w in on: low[v]=min(low[v],idx[w])
            if low[v]==idx[v]:
                comp=[]
                while True:
                    w=st.pop();on.discard(w);comp.append(w)
                    if w==v: break
                if len(comp)>1: found.append(("::".join(parent) or "crate",sorted(comp)))
        for v in list(g):
            if v not in idx: sc(v)
    print(c, "cycles:", found if found else "none")
