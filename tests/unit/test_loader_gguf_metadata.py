#!/usr/bin/env python3
"""GGUF metadata of every value type (incl. nested arrays, u64 above 2^63, bools, f64) written by the
`gguf` package's GGUFWriter and read back by nanoflow (`dump-tensor FILE --metadata`) equal the
values `gguf.GGUFReader` reports. (tests/model/test_loader_gguf_dequant.py reuses compare() on the
default model.)"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
    from gguf import GGUFValueType as V
except ImportError:
    print("gguf package missing"); sys.exit(77)

BIN = os.path.join(os.environ.get("NF_BUILD_DIR", "build"), "src", "nanoflow")


def normalize(v, t):
    """Reader value -> what our JSON holds (float32 values compared as float32)."""
    if isinstance(v, (list, tuple)):
        return [normalize(x, t) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(np.float32(v)) if t == V.FLOAT32 else float(v)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    return v


def compare(path, written={}, reader=None):
    ours = json.loads(subprocess.run([BIN, "dump-tensor", path, "--metadata"], check=True,
                                     capture_output=True, text=True).stdout)
    reader = reader or gguf.GGUFReader(path)
    fails = 0
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    if list(ours) != keys:
        print("key order/set differs:", list(ours)[:5], keys[:5]); fails += 1
    for k in keys:
        f = reader.fields[k]
        leaf = f.types[-1]
        ref = normalize(f.contents(), leaf)
        got = ours.get(k)
        if isinstance(got, list) or isinstance(got, float):
            got = normalize(got, leaf)
        if f.types[:2] == [V.ARRAY, V.ARRAY]:  # gguf's reader flattens nested arrays
            if k in written and got != written[k]:
                print(f"{k}: ours {got} != written {written[k]}"); fails += 1
            got = [x for sub in got for x in sub]
        if got != ref:
            print(f"{k}: ours {str(got)[:80]} != gguf {str(ref)[:80]}"); fails += 1
    print(f"{os.path.basename(path)}: {len(keys)} keys, {'ok' if not fails else str(fails) + ' differ'}")
    return fails


def main():
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "meta.gguf")
        w = gguf.GGUFWriter(p, "llama")
        w.add_uint8("t.u8", 250)
        w.add_int8("t.i8", -128)
        w.add_uint16("t.u16", 65535)
        w.add_int16("t.i16", -32768)
        w.add_uint32("t.u32", 4294967295)
        w.add_int32("t.i32", -2147483648)
        w.add_float32("t.f32", 0.1)
        w.add_uint64("t.u64", 2**64 - 1)
        w.add_int64("t.i64", -(2**63))
        w.add_float64("t.f64", 1e-300)
        w.add_bool("t.true", True)
        w.add_bool("t.false", False)
        w.add_string("t.str", "héllo wörld ✓")
        w.add_string("t.empty", "")
        w.add_array("t.ints", [1, -2, 3])
        w.add_array("t.floats", [0.5, -1.25, 3.0e10])
        w.add_array("t.strs", ["a", "", "ü"])
        w.add_array("t.bools", [True, False, True])
        nested = {"t.nested": [[1, 2], [3]], "t.nested_strs": [["x", "y"], ["z"]]}
        for k, v in nested.items():
            w.add_array(k, v)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        fails += compare(p, nested)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
