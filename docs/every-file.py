#!/usr/bin/env python3
# Writes the "Every file" table of docs/architecture.md from the first sentence
# of each source file's //! comment. Run from the repository root after adding
# or moving a file: python3 docs/every-file.py
import pathlib,re
root=pathlib.Path('src')
rows=[]
for p in sorted(root.rglob('*.rs')):
    rel=p.as_posix()
    text=p.read_text()
    lines=[]
    for l in text.split('\n'):
        if l.startswith('//!'):
            lines.append(l[3:].strip())
        else: break
    first=' '.join(lines)
    # first sentence
    m=re.match(r'(.+?[.])(\s|$)', first)
    summary=(m.group(1) if m else first).strip().rstrip('.')
    if len(summary)>200: summary=summary[:197].rsplit(' ',1)[0]+' …'
    summary=summary.replace('|','\\|')
    rows.append(f'| `{rel}` | {summary} |')
out='## Every file\n\nEach source file and the first sentence of its `//!` comment, written by `python3 docs/every-file.py` (`tests/layering.rs` checks that every file is listed here).\n\n| file | what it does |\n|---|---|\n'+'\n'.join(rows)+'\n'
p=pathlib.Path('docs/architecture.md')
s=p.read_text()
if '## Every file' in s:
    i=s.index('## Every file'); j=s.find('\n## ',i+5)
    s=s[:i]+out+(s[j:] if j!=-1 else '')
else:
    i=s.index('## The store\'s seam')
    s=s[:i]+out+'\n'+s[i:]
p.write_text(s)
