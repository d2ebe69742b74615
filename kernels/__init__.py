"""WGSL kernel sources (package data). The op registry (wgpu_runtime/ops) names the file each
op launches; wgpu_runtime.pipelines renders and compiles them."""
