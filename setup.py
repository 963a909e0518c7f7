"""Builds svdc._C (csrc/ + kernels/cpu/, OpenMP, OpenBLAS from scipy-openblas32; the CPU kernels twice, for any
x86-64 and with AVX2+FMA, chosen at run time), svdc._C_testing (the op-test
surface of tests and benchmarks, csrc/testing/) and, when nvcc is found, svdc._C_cuda (kernels/cuda/*.cu compiled to objects by nvcc inside build_ext, linked with cudart [+ cuBLAS]).

SVDC_CUDA=auto (default) builds the CUDA module when nvcc and the toolkit headers are found, and falls back to a
CPU-only build (with a message) when that build fails; 1 requires it (a failure stops the build); 0 never builds it.
nvcc is looked up in $CUDA_HOME/bin, then PATH, then /usr/local/cuda/bin. SVDC_CUDA_ARCHS overrides the GPU
architectures (default "80;90": A100 and H100/H200). Kernels carry -lineinfo (file:line in compute-sanitizer
reports, no run-time cost).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import scipy_openblas32
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


def rel_sources(*patterns):
    files = []
    for pattern in patterns:
        files += sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    return files


def find_nvcc():
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc")
    which = shutil.which("nvcc")
    if which:
        candidates.append(Path(which))
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c.resolve()
    return None


def cuda_home_of(nvcc):
    """The toolkit root: nvcc's grandparent when it holds include/cuda_runtime.h (a wrapper script elsewhere, as in
    /usr/local/bin, is followed through $CUDA_HOME or /usr/local/cuda); None when no headers are found."""
    for home in (nvcc.parent.parent, Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))):
        if (home / "include" / "cuda_runtime.h").is_file():
            return home.resolve()
    return None


def link_name(libdir, lib):
    """How to link lib: "-l<lib>" when the unversioned .so exists, else "-l:lib<lib>.so.N" (NVIDIA's pip wheels ship
    only versioned names), else the static archive; None when none exists."""
    if (libdir / f"lib{lib}.so").exists():
        return f"-l{lib}"
    versioned = sorted(libdir.glob(f"lib{lib}.so.*"))
    if versioned:
        return f"-l:{versioned[0].name}"
    if (libdir / f"lib{lib}_static.a").exists():
        return f"-l:lib{lib}_static.a"
    return None


def find_cublas(cuda_home):
    """cuBLAS from the toolkit, else from the `nvidia-cublas` wheel (nvidia/cu13 or nvidia/cublas layouts)."""
    if (cuda_home / "include" / "cublas_v2.h").is_file():
        return cuda_home
    try:
        import nvidia  # namespace package of NVIDIA's wheels
    except ImportError:
        return None
    for base in map(Path, nvidia.__path__):
        for root in (base / "cublas", base / "cu13", base / "cu12"):
            if (root / "include" / "cublas_v2.h").is_file():
                return root
    return None


C_FLAGS = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O3", "-fopenmp", "-fno-strict-aliasing", "-Wall", "-Wno-unknown-pragmas"]
if os.environ.get("SVDC_NATIVE", "0") == "1":
    C_FLAGS.append("-march=native")  # opt-in: the build then runs only on CPUs like this one
# Everything is compiled for any x86-64. The CPU kernel files (kernels/cpu, but blas.c, backend_cpu.c and prepack.c) are
# compiled a second time with AVX2+FMA as the "avx2" variant (SVDC_AVX2=1, the default on x86-64); backend_cpu.c
# picks the variant at run time from the CPU's features (SVDC_CPU_KERNELS=baseline|avx2|auto overrides).
for _name in ("SVDC_AVX2", "SVDC_NATIVE"):
    if os.environ.get(_name, "0") not in ("0", "1"):
        sys.exit(f"{_name} must be 0 or 1, got {os.environ[_name]!r}")
BUILD_AVX2 = os.uname().machine == "x86_64" and os.environ.get("SVDC_AVX2", "1") == "1"
CPU_VARIANT_SOURCES = [s for s in rel_sources("kernels/cpu/*.c")
                       if Path(s).name not in ("blas.c", "backend_cpu.c", "prepack.c")]
AVX2_FLAGS = ["-mavx2", "-mfma"]

openblas_lib = scipy_openblas32.get_lib_dir()
# The version lives in svdc/_version.py only; the C core gets it as SVDC_VERSION.
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "svdc" / "_version.py").read_text()).group(1)

cpu_extension = Extension(
    "svdc._C",
    sources=rel_sources("csrc/core/*.c", "csrc/models/*.c", "csrc/models/blocks/*.c", "csrc/python/*.c",
                        "kernels/cpu/*.c", "kernels/emu/*.c", "csrc/curation/*.c"),
    include_dirs=["csrc/include", "csrc/core", numpy.get_include(), scipy_openblas32.get_include_dir()],
    library_dirs=[openblas_lib],
    libraries=[scipy_openblas32.get_library()],
    # No runtime_library_dirs: pip builds in a temporary environment that is deleted afterwards; svdc/_native.py
    # loads OpenBLAS from the installed scipy-openblas32 wheel before svdc._C instead.
    define_macros=[("SVDC_VERSION", f'"{VERSION}"'), ("SVDC_CPU_VARIANT", "baseline")]
    + ([("SVDC_CPU_HAVE_AVX2", "1")] if BUILD_AVX2 else []),
    extra_compile_args=C_FLAGS,
    extra_link_args=["-fopenmp"],
)

# The op-test surface (tests and benchmarks only): no core file and no library; its svdc_* symbols resolve against
# svdc._C at load time, which svdc._native.testing_ops() makes global first (one core, one registry, one emu state).
testing_extension = Extension(
    "svdc._C_testing",
    sources=rel_sources("csrc/testing/*.c"),
    include_dirs=["csrc/include", "csrc/core", numpy.get_include()],
    extra_compile_args=C_FLAGS,
)

extensions = [cpu_extension, testing_extension]

mode = os.environ.get("SVDC_CUDA", "auto").lower()
if mode not in ("auto", "0", "1"):
    sys.exit(f"SVDC_CUDA must be auto, 0 or 1, got {mode!r}")
nvcc = find_nvcc() if mode != "0" else None
if mode == "1" and nvcc is None:
    sys.exit("SVDC_CUDA=1 but nvcc was not found in $CUDA_HOME/bin, PATH or /usr/local/cuda/bin")

cuda_home = cuda_home_of(nvcc) if nvcc is not None else None
if nvcc is not None and cuda_home is None:
    if mode == "1":
        sys.exit(f"SVDC_CUDA=1: found {nvcc} but no CUDA toolkit headers beside it; set CUDA_HOME")
    print(f"svdc: found {nvcc} but no CUDA toolkit headers (set CUDA_HOME): building the CPU backend only")

if cuda_home is not None:
    print(f"svdc: building svdc._C_cuda with {nvcc} (toolkit {cuda_home})")
    cuda_include = cuda_home / "include"
    cuda_libdir = next((d for d in (cuda_home / "lib64", cuda_home / "lib") if d.is_dir()), cuda_home / "lib64")
    cuda_include_dirs, cuda_library_dirs = [str(cuda_include)], [str(cuda_libdir)]
    cublas_root = find_cublas(cuda_home)
    if cublas_root is not None and cublas_root != cuda_home:
        cuda_include_dirs.append(str(cublas_root / "include"))
        cuda_library_dirs.append(str(cublas_root / "lib"))
    cudart = link_name(cuda_libdir, "cudart")
    if cudart is None:
        sys.exit(f"found CUDA headers under {cuda_home} but no libcudart.so* or libcudart_static.a in {cuda_libdir}")
    cuda_link_args = [cudart, "-lstdc++"]  # the .cu objects are C++ (linked here by the C compiler)
    if cudart.endswith("_static.a"):
        cuda_link_args += ["-ldl", "-lrt", "-lpthread"]
    if cublas_root is not None:
        libdir = Path(cuda_library_dirs[-1]) if cublas_root != cuda_home else cuda_libdir
        for lib in ("cublas", "cublasLt"):
            flag = link_name(libdir, lib)
            if flag is None or flag.endswith("_static.a"):
                sys.exit(f"found cuBLAS headers under {cublas_root} but no lib{lib}.so* in {libdir}")
            cuda_link_args.append(flag)
    archs = os.environ.get("SVDC_CUDA_ARCHS", "80;90")
    cuda_macros = [("SVDC_CUDA_ARCH_LIST", f'"{archs}"')]
    if cublas_root is not None:
        cuda_macros.append(("SVDC_HAVE_CUBLAS", "1"))
    else:
        print("svdc: cuBLAS headers not found (toolkit or the nvidia-cublas wheel): _C_cuda is built without it")
    extensions.append(
        Extension(
            "svdc._C_cuda",
            # No core file: the kernels reach the core's arena and error buffer through the services table the
            # device registry hands over (kernels/cuda/core_link.c).
            sources=rel_sources("kernels/cuda/*.c", "kernels/cuda/*.cu"),
            include_dirs=["csrc/include", "csrc/core", numpy.get_include(), *cuda_include_dirs],
            library_dirs=cuda_library_dirs,
            runtime_library_dirs=cuda_library_dirs,
            define_macros=cuda_macros,
            extra_compile_args=["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-Wall"],
            extra_link_args=cuda_link_args,
        )
    )


class BuildExt(build_ext):
    """Compiles .cu sources with nvcc, and the avx2 variant of the CPU kernels, into objects and hands them to the
    normal link step."""

    skipped = ()  # extensions whose build failed and was allowed to (SVDC_CUDA=auto)

    def build_extension(self, ext):
        if ext.name == "svdc._C_cuda" and mode == "auto":
            try:
                return self._build(ext)
            except Exception as exc:  # noqa: BLE001 - any compiler/linker failure: keep the CPU build usable
                print(f"svdc: building svdc._C_cuda failed ({exc}); continuing with the CPU backend only "
                      "(set SVDC_CUDA=1 to make this an error, SVDC_CUDA=0 to skip CUDA)")
                self.skipped = (*self.skipped, ext.name)
                return None
        return self._build(ext)

    def copy_extensions_to_source(self):
        """--inplace: copy what was built (a skipped CUDA module has nothing to copy)."""
        kept = self.extensions
        self.extensions = [e for e in kept if e.name not in self.skipped]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = kept

    def _build(self, ext):
        # Objects built here (the avx2 kernel variant, nvcc's) are invisible to setuptools' freshness check, which
        # sees only the .c sources: when any was rebuilt, relink.
        relink = ext.name == "svdc._C" and BUILD_AVX2 and self._add_avx2_variant(ext)
        cu_sources = [s for s in ext.sources if s.endswith(".cu")]
        if cu_sources:
            ext.sources = [s for s in ext.sources if not s.endswith(".cu")]
            ext.extra_objects = list(ext.extra_objects or []) + self._nvcc_compile(ext, cu_sources)
            relink = True
        target = self.get_ext_fullpath(ext.name)
        if relink and os.path.exists(target):
            os.remove(target)  # per extension, unlike self.force (build_ext -j builds extensions in threads)
        super().build_extension(ext)

    def _add_avx2_variant(self, ext):
        """Compiles the CPU kernel files again with AVX2+FMA as the avx2 variant (their own folder, their own symbol
        names: SVDC_CPU_VARIANT=avx2) and links them into ext. Objects newer than every kernel source and header are
        reused. Returns whether any was compiled."""
        out_dir = str(Path(self.build_temp) / "avx2")
        macros = [m for m in ext.define_macros if m[0] != "SVDC_CPU_VARIANT"] + [("SVDC_CPU_VARIANT", "avx2")]
        inputs = CPU_VARIANT_SOURCES + rel_sources("kernels/cpu/*.h", "csrc/core/*.h", "csrc/include/*.h")
        newest = max(os.path.getmtime(p) for p in inputs)
        objects = self.compiler.object_filenames(CPU_VARIANT_SOURCES, output_dir=out_dir)
        stale = not all(os.path.exists(o) and os.path.getmtime(o) >= newest for o in objects)
        if stale:
            objects = self.compiler.compile(CPU_VARIANT_SOURCES, output_dir=out_dir, macros=macros,
                                            include_dirs=ext.include_dirs, extra_postargs=C_FLAGS + AVX2_FLAGS)
        ext.extra_objects = [o for o in (ext.extra_objects or []) if o not in objects] + list(objects)
        return stale

    def _nvcc_compile(self, ext, sources):
        archs = os.environ.get("SVDC_CUDA_ARCHS", "80;90").split(";")
        gencode = []
        for arch in archs:
            gencode += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
        objects = []
        out_dir = Path(self.build_temp) / "cuda"
        out_dir.mkdir(parents=True, exist_ok=True)
        includes = [f"-I{d}" for d in ext.include_dirs]
        macros = [f"-D{k}={v}" for k, v in (ext.define_macros or [])]
        cmds = []
        for src in sources:
            obj = out_dir / (Path(src).stem + ".o")
            cmds.append([str(nvcc), "-c", src, "-o", str(obj), "-O3", "-lineinfo", "-std=c++17",
                         "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC", *gencode, *includes, *macros])
            objects.append(str(obj))
        # One nvcc per .cu file, in parallel (each is single-threaded and the template-heavy files take a while).
        from concurrent.futures import ThreadPoolExecutor

        def run(cmd):
            print(" ".join(cmd))
            subprocess.check_call(cmd)

        with ThreadPoolExecutor(max_workers=max(1, min(len(cmds), os.cpu_count() or 1))) as pool:
            list(pool.map(run, cmds))
        return objects


setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
