//! Choosing where to compute: `--device cpu|cuda`.

use kiln_core::{Error, Result};

/// A compute device requested on the command line (the driver's [`Device`]).
///
/// [`Device`]: kiln_core::driver::Device
pub use kiln_core::driver::Device as DeviceKind;

/// Whether this build can use CUDA.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Fails clearly when CUDA is asked for and this build or machine cannot provide it.
/// burn panics when the CUDA driver library cannot be loaded; the panic is caught
/// here and turned into an error that says what to do.
pub fn check_available(kind: DeviceKind) -> Result<()> {
    match kind {
        DeviceKind::Cpu => Ok(()),
        DeviceKind::Cuda if !CUDA_BUILT => Err(Error::usage(
            "--device cuda: this build has no CUDA support; build with `--features cuda` (the CUDA image does)",
        )),
        DeviceKind::Cuda => probe_cuda(),
    }
}

#[cfg(feature = "cuda")]
fn probe_cuda() -> Result<()> {
    use burn::tensor::Tensor;
    type Cuda = burn::backend::Cuda<f32, i32>;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        let device = burn::backend::cuda::CudaDevice::new(0);
        let t = Tensor::<Cuda, 1>::from_floats([1.0, 2.0], &device);
        t.sum().into_scalar()
    });
    std::panic::set_hook(previous);
    match probe {
        Ok(_) => Ok(()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "unknown error".into());
            Err(Error::usage(format!(
                "--device cuda: no usable CUDA device ({}); use --device cpu or run on a GPU node",
                why.lines().next().unwrap_or_default()
            )))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn probe_cuda() -> Result<()> {
    unreachable!("checked by CUDA_BUILT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available_and_names_parse() {
        assert!(check_available(DeviceKind::Cpu).is_ok());
        assert_eq!("cuda".parse::<DeviceKind>(), Ok(DeviceKind::Cuda));
        assert!("tpu".parse::<DeviceKind>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_usage_error() {
        let err = check_available(DeviceKind::Cuda).unwrap_err();
        assert!(
            err.to_string().contains("build with `--features cuda`"),
            "{err}"
        );
        assert_eq!(err.class().code(), 2);
    }
}
