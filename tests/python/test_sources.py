"""Invariants of the CUDA sources that the compiler cannot check.

The forward graph's edges into swinrt's kernels may be programmatic
(src/cuda/graph_edges.cu): a kernel may then start while the one before it
still runs, and is right only if it waits (wait_for_prior_grids(),
griddepcontrol.wait) before it reads an activation or writes anything.
graph_edges.cu takes every kernel of swinrt::cuda as one that waits, so
every __global__ function of src/cuda/*.cu must call it. (gemm_sm90.cuh's
gemm_kernel, around CUTLASS's GEMM, waits in CUTLASS's producer warp.)"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
CUDA = ROOT / "src" / "cuda"


def strip_launch_bounds(text):
    """`text` without its __launch_bounds__(...) qualifiers (nested parentheses)."""
    out, i = [], 0
    while (j := text.find("__launch_bounds__", i)) >= 0:
        out.append(text[i:j])
        k = text.index("(", j)
        depth = 0
        while True:
            depth += {"(": 1, ")": -1}.get(text[k], 0)
            k += 1
            if depth == 0:
                break
        i = k
    return "".join(out) + text[i:]


def kernels(text):
    """(name, body) of each __global__ function definition in `text`."""
    text = strip_launch_bounds(text)
    for m in re.finditer(r"__global__\s[^;{]*?(\w+)\s*\([^;{]*\)\s*\{", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        yield m.group(1), text[m.end():i]


def test_every_kernel_waits_for_prior_grids():
    found, declared, missing = 0, 0, []
    for path in sorted(CUDA.glob("*.cu")):
        text = path.read_text()
        # Every __global__ outside a comment must be seen by the pattern.
        declared += sum(line.split("//")[0].count("__global__") for line in text.splitlines())
        for name, body in kernels(text):
            found += 1
            if "wait_for_prior_grids()" not in body:
                missing.append(f"{path.name}: {name}")
    assert found >= 30 and found == declared, \
        f"{found} kernels matched of {declared} declared: the pattern no longer matches the sources"
    assert not missing, "kernels that do not call wait_for_prior_grids(): " + ", ".join(missing)


def test_kernel_pattern_sees_a_kernel_that_does_not_wait():
    src = "template <int N>\n__global__ void __launch_bounds__(128) k(const float* x) {\n  if (x) { }\n}\n"
    assert [(n, "wait_for_prior_grids()" in b) for n, b in kernels(src)] == [("k", False)]
