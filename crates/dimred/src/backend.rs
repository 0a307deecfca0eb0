//! Turning the [`Backend`] choice into a burn device: the only place a backend is named.

use burn::tensor::Device;

use crate::{Backend, Error, Result};

/// The inference device of `backend` (no autodiff).
pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => Err(Error::Backend {
            backend: "wgpu".into(),
            message: "this build has no wgpu support; rebuild with `--features dimred/wgpu` (or use the cpu backend)"
                .into(),
        }),
    }
}

/// The training device of `backend` (autodiff enabled).
pub fn training_device(backend: Backend) -> Result<Device> {
    Ok(device(backend)?.autodiff())
}

/// True when a wgpu adapter can be opened here (always false without the `wgpu` feature).
pub fn wgpu_available() -> bool {
    #[cfg(feature = "wgpu")]
    {
        std::panic::catch_unwind(|| {
            let d = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
            let t = burn::tensor::Tensor::<1>::from_floats([1.0f32, 2.0], &d);
            t.sum().into_scalar::<f32>() == 3.0
        })
        .unwrap_or(false)
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = Error::Numerical(String::new());
        false
    }
}
