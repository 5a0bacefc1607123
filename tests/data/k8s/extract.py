#!/usr/bin/env python3
# Usage: extract.py WHEEL K8S_VERSION OUT (see README.md beside this file).
# Extract the ResourceSlice schema and every definition it refers to into one
# self-contained JSON Schema file (refs rewritten to #/$defs/...).
import json, sys, zipfile
wheel, version, out = sys.argv[1:4]
base = f'kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/'
z = zipfile.ZipFile(wheel)
top = json.loads(z.read(base + 'resourceslice-resource-v1.json'))
defs = json.loads(z.read(base + '_definitions.json'))['$defs']
def refs(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == '$ref': yield v
            else: yield from refs(v)
    elif isinstance(o, list):
        for v in o: yield from refs(v)
need, todo = {}, [top]
while todo:
    for r in refs(todo.pop()):
        n = r.split('#/$defs/')[1]
        if n not in need:
            need[n] = defs[n]; todo.append(defs[n])
def rewrite(o):
    if isinstance(o, dict):
        return {k: (('#/$defs/' + v.split('#/$defs/')[1]) if k == '$ref' else rewrite(v)) for k, v in o.items()}
    if isinstance(o, list): return [rewrite(v) for v in o]
    return o
top = rewrite(top)
top['$defs'] = {k: rewrite(need[k]) for k in sorted(need)}
json.dump(top, open(out, 'w'), indent=1, sort_keys=True)
open(out, 'a').write('\n')
