//! A network flattened into the steps of its forward pass over numbered
//! activation buffers (buffer 0 is the input, shared by every member), and
//! what the backward pass needs of them. Dense layers followed directly by a
//! nonlinearity are fused into one step (the product's epilogue applies it).

use super::NetSpec;
use crate::activation::Activation;
use crate::arch::Layer;

/// One step of the forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Step {
    /// `out = mult_w in W^T + mult_b b`, then `act` into `act_out` when fused.
    Dense {
        /// The Dense layer's number.
        layer: usize,
        input: usize,
        out: usize,
        /// A nonlinearity applied in the same dispatch, and its output buffer.
        fused: Option<(Activation, usize)>,
    },
    /// `out = act(input)`.
    Activation {
        act: Activation,
        input: usize,
        out: usize,
    },
    /// `out = (input - mean) / sqrt(eps + var)` per row; `inv_std` keeps
    /// each row's scale for the backward pass.
    LayerNorm {
        eps: f64,
        input: usize,
        out: usize,
        inv_std: usize,
    },
    /// `target += skip` (the end of a residual block; `target` is the
    /// block's output, `skip` its input).
    ResidualAdd { skip: usize, target: usize },
}

/// The steps, and the width of every buffer (`inv_std` buffers have width 1).
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub widths: Vec<usize>,
    /// The buffer holding the output.
    pub output: usize,
}

impl Plan {
    /// The plan of a checked network.
    pub fn new(spec: &NetSpec) -> Plan {
        let mut p = Plan {
            steps: Vec::new(),
            widths: vec![spec.d_in],
            output: 0,
        };
        let mut dense = 0;
        p.output = p.block(&spec.arch.layers, 0, &mut dense);
        p
    }

    fn buffer(&mut self, width: usize) -> usize {
        self.widths.push(width);
        self.widths.len() - 1
    }

    fn block(&mut self, layers: &[Layer], mut cur: usize, dense: &mut usize) -> usize {
        let mut i = 0;
        while i < layers.len() {
            let width = self.widths[cur];
            match &layers[i] {
                Layer::Dense(d) => {
                    let out = self.buffer(d.out);
                    let fused = match layers.get(i + 1) {
                        Some(Layer::Activation(act)) => {
                            i += 1;
                            Some((*act, self.buffer(d.out)))
                        }
                        _ => None,
                    };
                    self.steps.push(Step::Dense {
                        layer: *dense,
                        input: cur,
                        out,
                        fused,
                    });
                    *dense += 1;
                    cur = fused.map_or(out, |(_, h)| h);
                }
                Layer::Activation(act) => {
                    let out = self.buffer(width);
                    self.steps.push(Step::Activation {
                        act: *act,
                        input: cur,
                        out,
                    });
                    cur = out;
                }
                Layer::LayerNorm { eps } => {
                    let out = self.buffer(width);
                    let inv_std = self.buffer(1);
                    self.steps.push(Step::LayerNorm {
                        eps: *eps,
                        input: cur,
                        out,
                        inv_std,
                    });
                    cur = out;
                }
                Layer::Residual(block) => {
                    let end = self.block(block, cur, dense);
                    self.steps.push(Step::ResidualAdd {
                        skip: cur,
                        target: end,
                    });
                    cur = end;
                }
            }
            i += 1;
        }
        cur
    }

    /// The step that writes buffer `b` (its Dense or nonlinearity), if any.
    pub fn dense_of(&self, layer: usize) -> Option<(usize, usize)> {
        self.steps.iter().find_map(|s| match *s {
            Step::Dense {
                layer: l,
                input,
                out,
                ..
            } if l == layer => Some((input, out)),
            _ => None,
        })
    }
}
