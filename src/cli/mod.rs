//! Command-line interface: argument definitions and the subcommands.

mod bench;
mod chaos;
mod curves;
mod devices;
mod empirical;
mod experiments;
mod hessian;
mod kernel;
mod kernel_rows;
mod merge;
mod predict;
mod sharpness;
mod stable_lr;
mod superposition;
mod train;
mod tune;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use widenet::error::Error;

/// widenet: train wide neural networks on any GPU and compare them with their
/// infinite-width limits (NNGP and NTK, exactly as neural-tangents defines them).
#[derive(Parser, Debug)]
#[command(name = "widenet", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Device to run on: auto, cpu, gpu, gpu:INDEX (see `widenet devices`), or part of an
    /// adapter's name. Defaults to $WIDENET_DEVICE, else auto (a discrete, integrated or
    /// virtual GPU; else the faster of a software rasterizer and the CPU backend, by their
    /// measured product rates; else the CPU backend).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub device: Option<String>,

    /// Skip the matrix-product autotune that GPU commands run once per adapter and driver
    /// (its result is cached; see `widenet tune`). Also $WIDENET_NO_AUTOTUNE=1.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_autotune: bool,

    /// Run only shard I of N of a sweep (compare, drift, mutransfer, chaos, learning-curves,
    /// random-labels, sharpness, superposition): the units whose
    /// index k in the sweep's unit list has k mod N = I, into --out with a shard.json
    /// instead of the report; `widenet merge` joins the shards.
    #[arg(long, global = true, value_name = "I/N", help_heading = GLOBAL)]
    pub shard: Option<String>,

    /// Build the report only from the points already in --out (as `widenet merge` does):
    /// computing any point is an error.
    #[arg(long, global = true, hide = true)]
    pub from_points: bool,

    /// Compute nothing: list the sweep's units in OUT/shard.json (for a driver that
    /// schedules them, e.g. the Python package's Ray driver).
    #[arg(long, global = true, hide = true)]
    pub list_units: bool,

    /// Figures as svg, png or both (the default: SVG for papers, PNG for anywhere else).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        value_name = "svg|png|both",
        default_value = "both"
    )]
    pub format: String,

    /// No progress bars, step lines or summaries on standard error, on every command:
    /// results (the tables a command exists to print), warnings, errors and where the
    /// outputs went are still printed.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Set from the global `--quiet` for this process's command.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--quiet` was given (on any command, before or after its name).
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// The help heading of the flags every command takes.
const GLOBAL: &str = "Global options (every command, before or after its name)";

const AFTER_HELP: &str = "\
Examples:
  widenet devices                       list adapters and what they support
  widenet kernel --x1 x.npy --get ntk --out k.npy
                                        NTK of a depth-3 ReLU network on the points in x.npy
  widenet predict --x-train xt.npy --y-train yt.npy --x-test xs.npy --t 10 --mean-out m.npy
                                        infinite-width predictions after training time 10
  widenet init --d-in 5 --width 1024 --ensemble 16 --out p.safetensors
  widenet train --params p.safetensors --x x.npy --y y.npy --optimizer gd --lr auto --steps 100 --out p2.safetensors
                                        16 wide networks trained at once (on the GPU, or the CPU)
  widenet bench matmul --sizes 512,1024 measure f32 matrix products
  widenet                               the main job: `widenet compare` with its defaults
  widenet compare --quick               finite networks against their infinite-width limit, small
  widenet learning-curves --quick       test error against training points, measured and predicted
  widenet self-check                    device table and a matrix product checked against the CPU
  widenet tune                          the matrix-product autotune's table for this adapter

Run `widenet <command> --help` for each command's options.";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Finite networks against their infinite-width limit across widths (the default job).
    Compare(experiments::CompareArgs),
    /// Deep linear networks learning singular modes one by one (Saxe et al. 2014).
    DeepLinear(experiments::DeepLinearArgs),
    /// Learning-rate sweeps across widths under SP and muP, SGD and Adam.
    Mutransfer(experiments::MuTransferArgs),
    /// The edge of chaos: signal-propagation theory on a grid, deep finite networks against it.
    Chaos(chaos::ChaosArgs),
    /// The edge of stability: sharpness against 2/eta across learning rates and widths (ntk, muP).
    Sharpness(sharpness::SharpnessArgs),
    /// Lazy against rich training: kernel and feature movement against width and output scale.
    Drift(experiments::DriftArgs),
    /// Learning curves and scaling laws: kernel regression and wide networks against eigenlearning.
    LearningCurves(curves::LearningCurvesArgs),
    /// Fitting random labels (Zhang et al. 2017, figure 1) against the kernel's prediction.
    RandomLabels(curves::RandomLabelsArgs),
    /// Toy models of superposition (Elhage et al. 2022): a sweep of sparsities as one batched run.
    Superposition(superposition::SuperpositionArgs),
    /// List the adapters wgpu finds on every backend (Vulkan, Metal, DX12, GL).
    Devices(devices::Args),
    /// Infinite-width NNGP or NTK of any architecture, written as .npy.
    Kernel(kernel::KernelArgs),
    /// Mean and covariance of infinitely wide networks trained by gradient descent (or the exact posterior).
    Predict(predict::PredictArgs),
    /// Initialize an ensemble of networks of any architecture and write its parameters (safetensors).
    Init(train::InitArgs),
    /// Outputs of every member of an ensemble on some inputs.
    Forward(train::ForwardArgs),
    /// Train an ensemble (GD, SGD, momentum, Adam) and write the trained parameters.
    Train(train::TrainArgs),
    /// Top eigenvalues and trace of the loss Hessian of every member of an ensemble, on the device.
    Hessian(hessian::HessianArgs),
    /// Empirical NTK or NNGP of every member of an ensemble, and its distance to the analytic kernel.
    EmpiricalKernel(empirical::EmpiricalArgs),
    /// Join the shards of a sweep (`--shard I/N` runs) into one report, as one machine would write it.
    Merge(merge::MergeArgs),
    /// The device table and a product checked against the CPU reference.
    SelfCheck,
    /// Time every matrix-product configuration on this adapter and cache the fastest (GPU
    /// commands do this once by themselves; this shows the table or measures again).
    Tune(tune::Args),
    /// Measure throughput of widenet's kernels on one device.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Parses the process arguments and runs the command; returns the exit code
/// (0 success, 2 bad input, 1 device failure).
pub fn run() -> ExitCode {
    ExitCode::from(run_with(std::env::args().collect()))
}

/// Runs the command line `argv` (the program's name first) and returns the
/// exit status: the binary's `main`, and the `widenet` command a pip install
/// puts on the PATH (through the Python package's native module).
pub fn run_with(argv: Vec<String>) -> u8 {
    let cli = Cli::parse_from(&argv);
    // Here, not in `dispatch`: `merge` dispatches each shard's own command
    // line again, and the merge's --quiet holds for all of it.
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    install_interrupt_handler();
    let result = merge::plan_from(&cli, argv).and_then(|()| dispatch(cli));
    match result {
        Ok(()) => 0,
        Err(e) => {
            let e = with_flag_names(e);
            eprintln!("error: {e}");
            exit_code(&e)
        }
    }
}

/// Runs one parsed command line.
pub(crate) fn dispatch(cli: Cli) -> widenet::Result<()> {
    if cli.no_autotune {
        tune::disable();
    }
    widenet::experiments::plot::set_format(widenet::experiments::plot::Format::parse(&cli.format)?);
    let sharded = cli.shard.is_some() || cli.list_units;
    let result = match cli.command {
        None => {
            if !cli.quiet {
                eprintln!(
                    "widenet: running the main job, `widenet compare` with its defaults \
                 (`widenet --help` lists every command)"
                );
            }
            experiments::run_compare(&experiments::CompareArgs::default(), cli.device.as_deref())
        }
        Some(Command::DeepLinear(a)) => experiments::run_deep_linear(&a, cli.device.as_deref()),
        Some(Command::Mutransfer(a)) => experiments::run_mutransfer(&a, cli.device.as_deref()),
        Some(Command::Chaos(a)) => chaos::run_chaos(&a, cli.device.as_deref()),
        Some(Command::Sharpness(a)) => sharpness::run_sharpness(&a, cli.device.as_deref()),
        Some(Command::Drift(a)) => experiments::run_drift(&a, cli.device.as_deref()),
        Some(Command::LearningCurves(a)) => curves::run_learning_curves(&a, cli.device.as_deref()),
        Some(Command::RandomLabels(a)) => curves::run_random_labels(&a, cli.device.as_deref()),
        Some(Command::Superposition(a)) => {
            superposition::run_superposition(&a, cli.device.as_deref())
        }
        Some(Command::Compare(a)) => experiments::run_compare(&a, cli.device.as_deref()),
        Some(Command::SelfCheck) => devices::self_check(cli.device.as_deref()),
        Some(Command::Tune(a)) => tune::run(&a, cli.device.as_deref()),
        Some(Command::Devices(a)) => devices::run(&a),
        Some(Command::Bench(b)) => bench::run(b, cli.device.as_deref()),
        Some(Command::Init(a)) => train::run_init(&a),
        Some(Command::Forward(a)) => train::run_forward(&a, cli.device.as_deref()),
        Some(Command::Train(a)) => train::run_train(&a, cli.device.as_deref()),
        Some(Command::Hessian(a)) => hessian::run(&a, cli.device.as_deref()),
        Some(Command::EmpiricalKernel(a)) => empirical::run(&a, cli.device.as_deref()),
        Some(Command::Kernel(a)) => kernel::run_kernel(&a, cli.device.as_deref()),
        Some(Command::Predict(a)) => predict::run(&a, cli.device.as_deref()),
        Some(Command::Merge(a)) => merge::run(&a),
    };
    if result.is_ok() && sharded && !widenet::experiments::shard::shard_written() {
        return Err(Error::invalid(
            "--shard: this command is not a sweep of checkpointed points",
        ));
    }
    result
}

/// Settings the library names by their keys (`lr`, `n-train`, ...), which
/// the command line takes as flags.
const KEYS: &[&str] = &[
    "lr",
    "steps",
    "log_every",
    "batch_size",
    "momentum",
    "learning_rate",
    "diag_reg",
    "t",
    "widths",
    "seeds",
    "n-train",
    "n-test",
    "curve-points",
    "alphas",
    "layers",
    "singular-values",
    "width",
    "u0",
    "tau",
    "every",
    "depth",
    "d-in",
    "q0",
    "c0",
    "prop-sb2",
    "prop-sw2",
    "train-sb2",
    "degree",
    "prop-depth",
    "batch",
    "task-d",
    "train-seeds",
    "train-width",
    "depths",
    "threshold",
    "x",
    "y",
    "n",
    "d",
    "target",
    "get",
    "ridge",
    "noise",
    "pool",
    "draws",
    "members",
    "finite-test",
    "corrupt",
    "max-steps",
    "fit-tol",
];

/// A library error that names settings by their keys, with the keys written
/// as the flags of the command line: in each clause ("a, b and c must ..."),
/// the list before the verb is rewritten when every item is a known key.
fn with_flag_names(e: Error) -> Error {
    let Error::Invalid(m) = e else { return e };
    let clauses: Vec<String> = m
        .split("; ")
        .map(|clause| {
            let verb = [" must", " needs", " takes", " at least"]
                .iter()
                .filter_map(|v| clause.find(v))
                .min();
            let Some(at) = verb else {
                return clause.to_string();
            };
            let (list, rest) = clause.split_at(at);
            let items: Vec<&str> = list.split(", ").flat_map(|p| p.split(" and ")).collect();
            if items.iter().all(|i| KEYS.contains(i)) {
                let flags = list
                    .split(", ")
                    .map(|p| {
                        p.split(" and ")
                            .map(|k| format!("--{}", k.replace('_', "-")))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{flags}{rest}")
            } else {
                clause.to_string()
            }
        })
        .collect();
    Error::Invalid(clauses.join("; "))
}

/// Makes Ctrl-C ask the running experiment to stop after writing what it has;
/// a second Ctrl-C ends the process at once.
fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if widenet::experiments::interrupted() {
            std::process::exit(130);
        }
        widenet::experiments::request_interrupt();
        eprintln!(
            "\ninterrupted: finishing the report with the points done so far (Ctrl-C again to quit now)"
        );
    });
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Gpu { .. } => 1,
        Error::Interrupted(_) => 130,
        _ => 2,
    }
}

/// The device choice from `--device`, else `WIDENET_DEVICE`, else auto.
pub(crate) fn device_choice(flag: Option<&str>) -> widenet::Result<widenet::DeviceChoice> {
    let text = match flag {
        Some(f) => f.to_string(),
        None => match std::env::var("WIDENET_DEVICE") {
            Ok(v) if !v.trim().is_empty() => v,
            _ => return Ok(widenet::DeviceChoice::Auto),
        },
    };
    widenet::DeviceChoice::parse(&text).map_err(|e| Error::invalid(format!("--device: {e}")))
}

/// The GPU options the environment asks for: `WIDENET_MATMUL_KERNEL`
/// (generic, vec4, sg8, coop), `WIDENET_COOPERATIVE_MATRIX=0`,
/// `WIDENET_UNCHECKED`, `WIDENET_CACHE_DIR`. The autotune is run by
/// [`tune::at_first_use`], with progress, not by the library.
pub(crate) fn gpu_options() -> widenet::GpuOptions {
    let mut o = widenet::GpuOptions::default();
    o.autotune = false;
    if let Ok(v) = std::env::var("WIDENET_MATMUL_KERNEL") {
        match widenet::gpu::matmul::MatmulKernel::parse(&v) {
            Some(k) => o.matmul_kernel = Some(k),
            None => log::warn!(
                "WIDENET_MATMUL_KERNEL={v} ignored (expected generic, vec4, sg8 or coop)"
            ),
        }
    }
    o.cooperative_matrix = std::env::var("WIDENET_COOPERATIVE_MATRIX").map_or(true, |v| v != "0");
    o.cache_dir = std::env::var_os("WIDENET_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    if std::env::var_os("WIDENET_UNCHECKED").is_some() {
        eprintln!(
            "warning: WIDENET_UNCHECKED is set: kernels are compiled without runtime bounds checks"
        );
        // SAFETY: the user asked for trusted modules through the documented
        // experiment switch; README and BENCHMARKS say what it risks.
        o = unsafe { o.without_bounds_checks() };
    }
    o
}

/// Opens the device from `--device` or `WIDENET_DEVICE`, with the first-use
/// autotune; `auto` says on stderr what it chose among a software adapter and
/// the CPU backend, and why.
pub(crate) fn open_device(flag: Option<&str>) -> widenet::Result<Box<dyn widenet::Backend>> {
    let choice = device_choice(flag)?;
    if choice == widenet::DeviceChoice::Auto {
        let (dev, why) = widenet::open_auto(&gpu_options(), &mut |g| tune::at_first_use(g))?;
        match &why.adapter {
            None => eprintln!(
                "warning: no GPU adapter found; running on the CPU backend (see `widenet devices`)"
            ),
            Some(a) if why.software && why.cpu_gflops.is_some() && !quiet() => eprintln!(
                "device auto: {} ({}; the faster of {} and the CPU backend)",
                dev.describe(),
                why.reason,
                a.name
            ),
            Some(_) => {}
        }
        return Ok(dev);
    }
    match widenet::gpu::GpuBackend::open(&choice, &gpu_options())? {
        Some(g) => {
            let info = widenet::Backend::info(&g);
            if info.device_type == "Cpu" && !quiet() {
                eprintln!(
                    "device: {} (a software rasterizer on the CPU, not a hardware GPU; `widenet devices` lists every adapter)",
                    info.name
                );
            }
            tune::at_first_use(&g);
            Ok(Box::new(g))
        }
        None => Ok(Box::new(widenet::cpu::CpuBackend)),
    }
}

/// Opens a GPU adapter from `--device` or `WIDENET_DEVICE` for commands that
/// need one (the CPU backend is an error), with the first-use autotune.
pub(crate) fn open_gpu(flag: Option<&str>) -> widenet::Result<widenet::gpu::GpuBackend> {
    let choice = device_choice(flag)?;
    let Some(g) = widenet::gpu::GpuBackend::open(&choice, &gpu_options())? else {
        return Err(Error::invalid(
            "this needs a GPU adapter, and the CPU backend was chosen; see `widenet devices`",
        ));
    };
    tune::at_first_use(&g);
    Ok(g)
}

/// The help of every `--activation` flag: each name and what its parameters mean.
pub(crate) const ACTIVATION_HELP: &str = "The activation (any case): identity (or linear); relu; \
leaky-relu[:ALPHA] = max(x, ALPHA x), ALPHA default 0.01; abs; abrelu:A,B = A x below 0 and B x above \
(neural-tangents' ABRelu; relu is abrelu:0,1, abs is abrelu:-1,1); erf[:A,B,C] = A erf(B x) + C, default \
1,1,0 (neural-tangents' Erf); tanh; sigmoid; gelu; sign";

/// A library error about a flag's value, with the flag's name in front.
pub(crate) fn flag<T>(name: &str, r: widenet::Result<T>) -> widenet::Result<T> {
    r.map_err(|e| match e {
        Error::Invalid(m) => Error::invalid(format!("{name}: {m}")),
        other => other,
    })
}

/// Refuses a zero among sizes given by flags, naming the flag.
pub(crate) fn check_sizes(sizes: &[(&str, usize)]) -> widenet::Result<()> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((flag, _)) => Err(Error::invalid(format!("{flag} must be at least 1"))),
        None => Ok(()),
    }
}

/// Refuses a negative or non-finite scale given by a flag, naming the flag.
pub(crate) fn check_scales(scales: &[(&str, f64)]) -> widenet::Result<()> {
    match scales.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        Some((flag, v)) => Err(Error::invalid(format!(
            "{flag} must be finite and non-negative, got {v}"
        ))),
        None => Ok(()),
    }
}

/// Parses a comma-separated list of positive integers.
pub(crate) fn parse_list(flag: &str, s: &str) -> widenet::Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Error::invalid(format!(
                "{flag}: expected a comma-separated list of positive integers, got '{s}'"
            ))
        })?;
    if v.is_empty() || v.contains(&0) {
        return Err(Error::invalid(format!(
            "{flag}: every entry must be at least 1, got '{s}'"
        )));
    }
    Ok(v)
}

/// Refuses an output path whose folder does not exist, before any work starts.
/// [`check_out`], and a warning on stderr when the file name does not end
/// in `.ext`, the format the command writes (it is written all the same).
pub(crate) fn check_out_ext(path: &std::path::Path, flag: &str, ext: &str) -> widenet::Result<()> {
    check_out(path)?;
    if path
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case(ext))
    {
        eprintln!(
            "warning: {flag} {} does not end in .{ext}; it is written as a .{ext} file",
            path.display()
        );
    }
    Ok(())
}

pub(crate) fn check_out(path: &std::path::Path) -> widenet::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::file(path, "the output folder does not exist"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    /// Every option of every subcommand, at every depth, with no help line.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg
                .get_help()
                .is_none_or(|h| h.to_string().trim().is_empty())
            {
                out.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
            }
        }
        for sub in cmd.get_subcommands() {
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_of_every_command_has_a_help_line() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        undocumented(&cmd, "widenet", &mut missing);
        assert!(missing.is_empty(), "options without help: {missing:#?}");
        // The walk reaches the nested commands (bench's) and their options.
        let bench = cmd
            .find_subcommand("bench")
            .map(|b| b.get_subcommands().count());
        assert!(bench.is_some_and(|n| n >= 3), "{bench:?}");
    }

    /// Every command's path, at every depth (`bench matmul`, ...).
    fn paths(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            paths(sub, p.clone(), out);
            out.push(p);
        }
    }

    #[test]
    fn every_command_takes_quiet_after_its_name() {
        let mut all = Vec::new();
        paths(&Cli::command(), Vec::new(), &mut all);
        assert!(all.len() >= 25, "{}", all.len());
        for p in all {
            let argv = std::iter::once("widenet".to_string())
                .chain(p.iter().cloned())
                .chain(["--quiet".into(), "--help".into()]);
            let kind = Cli::try_parse_from(argv).map_err(|e| e.kind());
            // --help is reached only once --quiet has been accepted.
            assert_eq!(
                kind.err(),
                Some(clap::error::ErrorKind::DisplayHelp),
                "widenet {} --quiet",
                p.join(" ")
            );
        }
        let cli = Cli::try_parse_from(["widenet", "devices", "--quiet"]);
        assert!(cli.is_ok_and(|c| c.quiet));
    }

    #[test]
    fn every_command_has_an_about_line() {
        let cmd = Cli::command();
        let missing: Vec<&str> = cmd
            .get_subcommands()
            .filter(|s| s.get_about().is_none())
            .map(|s| s.get_name())
            .collect();
        assert!(
            missing.is_empty(),
            "commands without a description: {missing:?}"
        );
    }
}
