//! Host wrapper of `shaders/chaos.wgsl`: signal-propagation theory, one
//! invocation per point.

use super::context::{Constants, GpuContext, PipelineKey, Shader, View, read, slots, write};
use crate::backend::{SignalSpec, SignalTask};
use crate::chaos::gauss::{hermite_table, mehler_terms};
use crate::error::{Error, Result};
use crate::quadrature::GaussHermite;

/// The shader's bound on the Mehler terms (`MAX_TERMS`): half the largest degree.
const MAX_TERMS: usize = 200;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ChaosParams {
    pub(crate) count: u32,
    pub(crate) degree: u32,
    pub(crate) terms: u32,
    pub(crate) _pad0: u32,
    pub(crate) pa: f32,
    pub(crate) pb: f32,
    pub(crate) pc: f32,
    pub(crate) _pad1: u32,
}

fn whole<'a>(ctx: &GpuContext, b: &'a wgpu::Buffer, len: usize) -> Result<View<'a>> {
    let w = ctx.window("signal_propagation", 0, len)?;
    Ok(View {
        buffer: b,
        offset: w.offset,
        size: w.size,
    })
}

/// The rule's nodes and its weights over sqrt(pi); the Hermite table of the
/// nodes up to 0 (the middle node's row halved); the number of terms.
fn rule_values(degree: usize) -> (Vec<f32>, Vec<f32>, usize) {
    let rule = GaussHermite::cached(degree);
    let n = rule.nodes.len();
    let terms = mehler_terms(n).min(MAX_TERMS);
    let sqrt_pi = std::f64::consts::PI.sqrt();
    let mut v: Vec<f32> = rule.nodes.iter().map(|&x| x as f32).collect();
    v.extend(rule.weights.iter().map(|&w| (w / sqrt_pi) as f32));
    let full = hermite_table(&rule, terms);
    let half = n.div_ceil(2);
    let table = full[..half * terms]
        .iter()
        .enumerate()
        .map(|(idx, &t)| {
            let middle = n % 2 == 1 && idx / terms == n / 2;
            (if middle { t / 2.0 } else { t }) as f32
        })
        .collect();
    (v, table, terms)
}

/// Queues the kernel over `count` items of `input` into `output`.
pub(crate) fn run(
    ctx: &GpuContext,
    spec: &SignalSpec,
    count: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<()> {
    let numeric = spec.quadrature || !spec.act.has_closed_form();
    let (code, [pa, pb, pc]) = spec.act.shader_code();
    let (values, table, terms) = if numeric {
        rule_values(spec.degree)
    } else {
        (vec![0.0; 4], vec![0.0; 4], 0)
    };
    let rule = ctx.create_storage("signal rule", values.len())?;
    ctx.write(&rule, 0, &values);
    let hermite = ctx.create_storage("signal hermite table", table.len())?;
    ctx.write(&hermite, 0, &table);
    let entry = match spec.task {
        SignalTask::FixedPoints => "fixed_points",
        SignalTask::Critical => "critical",
    };
    let key = PipelineKey {
        shader: Shader::Chaos,
        entry,
        slots: slots![read(1), write(2), read(3), read(4)],
        constants: Constants::of(&[
            ("ACT_CODE", f64::from(code)),
            ("NUMERIC", f64::from(u32::from(numeric))),
            ("TERMS4", (terms / 4).max(1) as f64),
        ]),
    };
    let dim = |v: usize| {
        u32::try_from(v).map_err(|_| Error::invalid("signal_propagation: too many points"))
    };
    let params = ChaosParams {
        count: dim(count)?,
        degree: dim(spec.degree.clamp(1, 400))?,
        terms: dim(terms)?,
        pa,
        pb,
        pc,
        ..Default::default()
    };
    let groups = count.div_ceil(64);
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let (x, y) = if groups <= max {
        (groups, 1)
    } else {
        (max, groups.div_ceil(max))
    };
    let views = [
        whole(ctx, input, count * spec.task.inputs())?,
        whole(ctx, output, count * spec.task.outputs())?,
        whole(ctx, &rule, values.len())?,
        whole(ctx, &hermite, table.len())?,
    ];
    ctx.dispatch(&key, &params, &views, [dim(x)?, dim(y)?, 1])
}
