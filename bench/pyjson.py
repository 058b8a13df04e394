# pyjson.py - issue #13's Python case: json.dumps of 400,000 small dicts,
# then json.loads of the text.  Run under each allocator with
# /usr/bin/time -f %M (peak RSS, KiB), e.g.
#   LD_PRELOAD=lib/.libs/libhakmem.so /usr/bin/time -f %M python3 bench/pyjson.py
import json

records = [{"id": i, "name": "record-%d" % i, "value": i * 0.5,
            "tags": ["alpha", "beta"], "ok": i % 3 == 0}
           for i in range(400000)]
text = json.dumps(records)
again = json.loads(text)
assert len(again) == len(records) and again[-1] == records[-1]
