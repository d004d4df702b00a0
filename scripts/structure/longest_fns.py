#!/usr/bin/env python3
"""Longest production fns (src/ trees, #[cfg(test)] items and test-module files excluded), in the working tree.
usage: fnlen.py [N] [--root DIR]"""
import os, re, sys, subprocess
root = sys.argv[sys.argv.index("--root")+1] if "--root" in sys.argv else "."
N = int(sys.argv[1]) if len(sys.argv)>1 and sys.argv[1].isdigit() else 15
files = subprocess.run(["git","-C",root,"ls-files","*.rs"],capture_output=True,text=True).stdout.split()
def prod(p):
    parts=p.split("/")
    return "src" in parts and not any(x in ("tests","benches","examples") for x in parts) and not p.endswith("/tests.rs")
def clean(l):
    l = re.sub(r"'(\\.|[^'\\])'", "' '", l)
    l = re.sub(r'"(\\.|[^"\\])*"', '""', l)
    return re.sub(r"//.*", "", l)
res=[]
for p in files:
    if not prod(p): continue
    lines=open(os.path.join(root,p)).read().split("\n")
    i=0; skip_until=-1
    while i < len(lines):
        l=lines[i]
        if re.match(r"\s*#\[cfg\(test\)\]", l):
            d=0; j=i+1; st=False
            while j<len(lines):
                s=clean(lines[j]); d+=s.count("{")-s.count("}")
                if "{" in s: st=True
                if st and d<=0: break
                if not st and s.strip().endswith(";"): break
                j+=1
            i=j+1; continue
        m=re.match(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)", l)
        if m:
            d=0; j=i; st=False
            while j<len(lines):
                s=clean(lines[j]); d+=s.count("{")-s.count("}")
                if "{" in s: st=True
                if not st and s.strip().endswith(";"): break
                if st and d<=0: break
                j+=1
            if st:
                body=[x for x in lines[i:j+1] if x.strip()]
                res.append((len(body), f"{p}:{i+1}", m.group(6)))
        i+=1
res.sort(reverse=True)
for n,loc,name in res[:N]: print(n, name, loc)
