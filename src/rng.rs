//! A small, seeded, platform-independent random number generator (SplitMix64
//! with Box-Muller normals), so that the same seed gives the same numbers on
//! every machine, backend and adapter.

/// SplitMix64 (Steele, Lea and Flood 2014).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
            spare: None,
        }
    }

    /// A generator for stream `stream` of `seed` (independent members, layers...).
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut r = Rng::new(seed);
        r.state = r
            .state
            .wrapping_add(stream.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }

    /// `n` standard normals as f32.
    pub fn normals_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal() as f32).collect()
    }

    /// A uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
}

/// The PCG hash of one 32-bit word (Jarzynski and Olano 2020, "Hash Functions
/// for GPU Rendering", `pcg`): a bijection of u32 in wrapping u32 arithmetic,
/// so that the host and every shader compute the same bits.
/// `shaders/sparse_features.wgsl` holds its twin.
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The hash that seeds one member's draws at one step: `pcg(step ^ pcg(member
/// ^ pcg(seed)))` (hashes nested, one coordinate at a time).
pub fn draw_key(seed: u32, member: u32, step: u32) -> u32 {
    pcg_hash(step ^ pcg_hash(member ^ pcg_hash(seed)))
}

/// The top 24 bits of a hash as a float in [0, 1) (exact in f32).
pub fn unit_f32(h: u32) -> f32 {
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Value `index` of a sparse feature vector drawn with `key` (see
/// [`draw_key`]): 0 with probability `sparsity`, else uniform on [0, 1).
/// With `h = pcg(index ^ key)`, the value is 0 when `unit(h) < sparsity`, else
/// `unit(pcg(h))`: bit for bit what the device computes
/// ([`Backend::sparse_features`](crate::backend::Backend::sparse_features)).
pub fn sparse_feature(key: u32, index: u32, sparsity: f32) -> f32 {
    let h = pcg_hash(index ^ key);
    if unit_f32(h) < sparsity {
        0.0
    } else {
        unit_f32(pcg_hash(h))
    }
}
