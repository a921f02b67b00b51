//! The training kernels where only the GPU backend has something to get
//! wrong: optimizer updates over tensors larger than one storage binding,
//! run in windows of whole members. Their results on ordinary shapes, on
//! both backends, are in `conformance.rs`.

mod common;

use common::{check_updates, gpu, gpu_with_kernel};
use widenet::gpu::MatmulKernel;

#[test]
fn optimizer_updates_in_windows_of_whole_members() {
    let Some(_) = gpu() else { return };
    let Some(small) = gpu_with_kernel(MatmulKernel::Generic) else {
        panic!("the generic kernel runs on every adapter")
    };
    // 512 bytes per binding: 5 members of 37 (148 bytes) or 36 values go
    // three members to a window, over the scalar and the vec4 kernels.
    widenet::testing::cap_binding_size(&small, 512).unwrap();
    check_updates(&small, 37);
    check_updates(&small, 36);
}
