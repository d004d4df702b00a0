#!/usr/bin/env python3
"""Non-blank production Rust lines at a git revision: src/ trees of the workspace, #[cfg(test)] items and
files included only as #[cfg(test)] modules excluded.
usage: loc.py REV [--by-file]"""
import subprocess, sys, re, collections
rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
files = subprocess.run(["git","ls-tree","-r","--name-only",rev],capture_output=True,text=True,check=True).stdout.split()
def prod(p):
    if not p.endswith(".rs"): return False
    parts = p.split("/")
    if any(x in ("tests","benches","examples","fuzz") for x in parts): return False
    if "src" not in parts: return False
    if p.endswith("build.rs"): return True
    return True
def strip_tests(text):
    lines = text.split("\n"); out=[]; i=0
    while i < len(lines):
        l = lines[i]
        if re.match(r"\s*#\[cfg\(test\)\]", l):
            # skip the following item: until braces balance (or a ; line if no brace)
            j=i+1; depth=0; started=False
            while j < len(lines):
                s = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j]); s = re.sub(r"//.*", "", s)
                depth += s.count("{") - s.count("}")
                if "{" in s: started=True
                if started and depth<=0: break
                if not started and s.strip().endswith(";"): break
                j+=1
            i=j+1; continue
        out.append(l); i+=1
    return out
tot=0; by=collections.Counter()
texts={p: subprocess.run(["git","show",f"{rev}:{p}"],capture_output=True,text=True).stdout for p in files if prod(p)}
testmods=set()
import os
for p,t in texts.items():
    for m in re.finditer(r"#\[cfg\(test\)\]\s*\n\s*mod ([a-z_0-9]+);", t):
        d=os.path.dirname(p); name=m.group(1)
        base = d if os.path.basename(p) in ("mod.rs","lib.rs","main.rs") else os.path.join(d, os.path.basename(p)[:-3])
        testmods.add(os.path.join(base,name+".rs")); testmods.add(os.path.join(base,name,"mod.rs"))
for p in files:
    if not prod(p) or p in testmods: continue
    t = texts[p]
    n = sum(1 for l in strip_tests(t) if l.strip())
    tot+=n; by[p]=n
if "--by-file" in sys.argv:
    for p,n in by.most_common(): print(n,p)
elif "--by-crate" in sys.argv:
    c=collections.Counter()
    for p,n in by.items(): c[p.split("/src/")[0] if "/src/" in p else p]+=n
    for p,n in c.most_common(): print(n,p)
print(tot)
