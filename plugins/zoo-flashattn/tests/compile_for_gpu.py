"""Compile the Triton kernels for a GPU without one: the launcher's real arguments, no launch.

Run as a script (``TRITON_INTERPRET`` must be unset, so that the kernels load compiled):
every kernel launch of our forward and backward on CPU tensors is bound exactly as Triton's
JIT binds it, then compiled through ttir/ttgir/llir/ptx/cubin for ``sm_90`` with Triton's
bundled ``ptxas`` — the compiled path that the interpreter never exercises. Prints one JSON
line per launch: kernel, launch options, shared memory and PTX size; with ``--ptx DIR`` the
PTX is written there too (to compare two versions of the kernels).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Any

import torch
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compile, make_backend
from triton.runtime.jit import JITFunction, create_function_from_signature

TARGET = GPUTarget("cuda", 90, 32)


def compile_launch(kernel: JITFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What ``kernel[grid](*args, **kwargs)`` would compile on an sm_90 GPU."""
    backend = make_backend(TARGET)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound,
                                                              specialization, options)
    return compile(ASTSource(kernel, signature, constexprs, attrs), target=TARGET,
                   options=options.__dict__)


CASES = {
    "causal_fp16_d64": (dict(b=2, h=4, hkv=4, s=256, d=64, dtype=torch.float16),
                        dict(causal=True)),
    "options_fp16_d80": (dict(b=2, h=4, hkv=2, s=200, d=80, dtype=torch.float16),
                         dict(window=(40, 8), softcap=30.0, alibi=True, kpm=True,
                              dropout_p=0.1, seed=3)),
    "varlen_fp32_d32": (dict(b=2, h=2, hkv=2, s=96, d=32, dtype=torch.float32),
                        dict(causal=True, varlen=True)),
}


def inputs(b: int, h: int, hkv: int, s: int, d: int, dtype: torch.dtype, **opts: Any
           ) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(b, h, s, d, generator=g).to(dtype)
    k, v = (torch.randn(b, hkv, s, d, generator=g).to(dtype) for _ in range(2))
    kw = {key: val for key, val in opts.items() if key not in ("alibi", "kpm", "varlen")}
    if opts.get("alibi"):
        kw["alibi_slopes"] = torch.rand(h)
    if opts.get("kpm"):
        kw["key_padding_mask"] = torch.arange(s)[None].expand(b, s) < s - 7
    if opts.get("varlen"):
        q, k, v = (x.transpose(1, 2).reshape(b * s, x.shape[1], d) for x in (q, k, v))
        cu = torch.tensor([0, s // 2 + 5, b * s], dtype=torch.int32)
        kw.update(cu_seqlens_q=cu, cu_seqlens_k=cu)
    return (q, k, v), kw


def main() -> None:
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        sys.exit("unset TRITON_INTERPRET: this compiles the kernels, it does not interpret them")
    parser = argparse.ArgumentParser()
    parser.add_argument("--ptx", type=pathlib.Path)
    parser.add_argument("cases", nargs="*", default=list(CASES))
    ns = parser.parse_args()

    from zoo_flashattn import _triton_bwd, _triton_fwd, triton_backend
    from zoo_flashattn._spec import validate

    current: list[str] = []

    def compiling(kernel: JITFunction) -> Any:
        def run(*args: Any, grid: Any, warmup: bool, **kwargs: Any) -> None:
            launch = {k: kwargs[k] for k in ("num_warps", "num_stages") if k in kwargs}
            compiled = compile_launch(kernel, args, kwargs)
            name = kernel.fn.__name__
            if ns.ptx:
                ns.ptx.mkdir(parents=True, exist_ok=True)
                (ns.ptx / f"{current[0]}.{name}.ptx").write_text(compiled.asm["ptx"])
            print(json.dumps({"case": current[0], "kernel": name, "params": len(kernel.params),
                              **launch, "shared": compiled.metadata.shared,
                              "ptx_lines": compiled.asm["ptx"].count("\n")}), flush=True)
        return run

    for mod in (_triton_fwd, _triton_bwd):
        for obj in vars(mod).values():
            if isinstance(obj, JITFunction) and obj.fn.__name__.endswith("_kernel"):
                obj.run = compiling(obj)  # type: ignore[method-assign]
    for case in ns.cases:
        current[:] = [case]
        shape, opts = CASES[case]
        (q, k, v), kw = inputs(**shape, **opts)
        call = validate(q, k, v, **kw)
        c = triton_backend._Common(call)
        out, lse = triton_backend.forward(c, q, k, v)
        triton_backend.backward(c, torch.randn_like(out), q, k, v, out, lse)


if __name__ == "__main__":
    main()
