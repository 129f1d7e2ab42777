"""The soak's checks once the clients are done: every mail answered 250 is
stored exactly once, nothing refused or smuggled is stored, every outbox
item is in a final or retrying state, RSS back near its baseline. Prints
the figures as Markdown; exits 1 when a check fails.

    python3 bench/soak-check.py WORKDIR PID JOBMAIL
"""

import collections
import json
import os
import sqlite3
import subprocess
import sys
import time

W, PID, JOBMAIL = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = json.load(open(os.path.join(W, "clients.json")))


def status(field):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])


def rss_kb():
    return status("VmRSS")


def states():
    out = subprocess.run([JOBMAIL, "queue", "list", "--config", os.path.join(W, "jobmail.toml"), "--limit", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["summary"]


# Settle: let the relay finish what it holds (nothing left "sending").
for _ in range(60):
    s = states()
    if not s.get("sending"):
        break
    time.sleep(1)
time.sleep(30)
final_rss = rss_kb()
summary = states()
db = sqlite3.connect(f"file:{os.path.join(W, 'jobmail.db')}?mode=ro", uri=True, timeout=30)
stored = collections.Counter(mid for (mid,) in db.execute("SELECT message_id FROM messages WHERE direction = 'inbound'"))
outbox = collections.Counter(st for (st,) in db.execute("SELECT state FROM outbox"))
accepted, refused, smuggled = log["accepted"], log["refused"], log["smuggled"]
strip = lambda m: m.strip("<>")
key = lambda m: stored.get(m, 0) + stored.get(strip(m), 0)
not_once = [m for m in accepted if key(m) != 1]
refused_stored = [m for m in refused if key(m) != 0]
smuggled_stored = [m for m in smuggled if key(m) != 0]
bad_states = {s: n for s, n in outbox.items() if s not in ("sent", "failed", "bounced", "cancelled", "deferred", "queued", "scheduled")}
rss = log["rss_kb"]
fails = []
if not_once:
    fails.append(f"{len(not_once)} mails answered 250 not stored exactly once, e.g. {not_once[:3]}")
if refused_stored:
    fails.append(f"{len(refused_stored)} refused mails stored, e.g. {refused_stored[:3]}")
if smuggled_stored:
    fails.append(f"{len(smuggled_stored)} smuggled mails stored, e.g. {smuggled_stored[:3]}")
if bad_states:
    fails.append(f"outbox items not final or retrying: {bad_states}")
# Every session but garbage ends with a reply it reads: an error here is a
# client that did not follow the protocol, or a server that dropped it.
errors = {k: n for k, n in log["errors"].items() if not k.startswith("garbage:")}
if errors:
    fails.append(f"sessions that ended without a reply: {errors}")
if final_rss > max(rss["baseline"] * 1.5, rss["baseline"] + 30 * 1024):
    fails.append(f"RSS {final_rss} kB not back near its baseline {rss['baseline']} kB")
upstream = open(os.path.join(W, "upstream.count")).read().strip() if os.path.exists(os.path.join(W, "upstream.count")) else "0"
print(f"## Soak: {sum(log['kinds'].values())} sessions over {log['elapsed_s']} s")
print()
print("| figure | value |")
print("|---|---|")
print(f"| sessions by kind | {', '.join(f'{k} {v}' for k, v in sorted(log['kinds'].items()))} |")
print(f"| end-of-data replies by kind | {'; '.join(k + ': ' + ', '.join(f'{c}×{n}' for c, n in sorted(v.items())) for k, v in sorted(log['replies'].items()))} |")
print(f"| client-side errors (timeouts, resets) | {', '.join(f'{k} {v}' for k, v in sorted(log['errors'].items())) or 'none'} |")
print(f"| mails answered 250 / stored exactly once | {len(accepted)} / {len(accepted) - len(not_once)} |")
print(f"| refused mails stored / smuggled mails stored | {len(refused_stored)} of {len(refused)} / {len(smuggled_stored)} of {len(smuggled)} |")
print(f"| inbound mails in the store | {sum(stored.values())} |")
print(f"| outbox by state | {', '.join(f'{s} {n}' for s, n in sorted(outbox.items()))} |")
print(f"| accepted by the flaky upstream | {upstream} |")
for i, r in enumerate(rss.get("rounds", []), 1):
    print(f"| RSS round {i}: peak / after its idle | {r['peak'] // 1024} MiB / {r['after_idle'] // 1024} MiB |")
print(f"| RSS baseline / peak / after 30 s idle | {rss['baseline'] // 1024} MiB / {rss['peak'] // 1024} MiB / {final_rss // 1024} MiB |")
print(f"| of which anonymous / file | {status('RssAnon') // 1024} MiB / {status('RssFile') // 1024} MiB |")
print()
print("checks: " + ("all passed" if not fails else "FAILED"))
for f in fails:
    print(" -", f)
sys.exit(1 if fails else 0)
