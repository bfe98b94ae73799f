//! The "what to look for" panels: for every preset and lab, the claim of its paper in one or two
//! sentences, what on the screen shows it, and the citation.

/// One panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guide {
    /// A short title (what the page shows), e.g. "AMUSE on a noisy river valley".
    pub title: &'static str,
    /// The paper's claim, one or two sentences.
    pub claim: &'static str,
    /// What on the screen shows it: which plot, which line or colour/label, what happens as it
    /// plays.
    pub look_for: &'static str,
    /// The citation(s): authors, title, venue and year, arXiv id where the spec gives one.
    pub citation: &'static str,
}

// ---------------------------------------------------------------------------------------------
// The Experiment lab.
// ---------------------------------------------------------------------------------------------

/// The Experiment lab on a problem that is not one of the presets.
const EXPERIMENT: Guide = Guide {
    title: "Optimizers side by side",
    claim: "Each optimizer here carries a claim: Adam normalizes every coordinate's step, Muon orthogonalizes its momentum, Schedule-Free averaging replaces the learning-rate schedule, AMUSE combines Muon with Schedule-Free, and MeZO needs only forward passes. All runs share the start, the seed and the gradient noise, so the differences are the optimizers' own.",
    look_for: "Landscape: the log-scaled heat map with every run's path and current point (colours in the legend); click to restart all runs from that point. Schedule-Free runs and AMUSE are drawn and measured at their averaged evaluation point. Spectrum: singular values of BA against step, targets dashed (factorization problems only). Loss: every run's loss against step, log scale. The left panel edits each run's fields.",
    citation: "Kingma, Ba, \"Adam: A Method for Stochastic Optimization\", ICLR 2015, arXiv 1412.6980; Jordan et al., Muon (2024), github.com/KellerJordan/Muon; Defazio et al., \"The Road Less Scheduled\", NeurIPS 2024, arXiv 2405.15682; Kim, Shin, Yun, Baek, Song, Yun, \"AMUSE: Anytime Muon with Stable Gradient Evaluation\", arXiv 2605.22432; Malladi et al., \"Fine-Tuning Language Models with Just Forward Passes\" (MeZO), NeurIPS 2023, arXiv 2305.17333.",
};

/// `river-valley`: spec §4.4.
const RIVER_VALLEY: Guide = Guide {
    title: "AMUSE on a noisy river valley",
    claim: "AMUSE runs Muon inside Schedule-Free averaging and moves the point where gradients are taken from the fast Muon iterate toward the running average as β_t grows after warmup. It keeps Muon's fast progress along a river valley's floor while averaging away its bouncing between the walls, with no learning-rate schedule.",
    look_for: "Landscape: the winding river floor v = 0.5 sin u between steep walls; paths run from (0, 1) toward the asterisk at (6, −0.14), sf-muon and amuse at their averaged iterate. Loss (log): muon drops fastest, then stalls on a noisy floor; amuse passes it later and ends lowest (spec §4.4, mean of 10 seeds at t = 2000: 0.0023 against 0.022). The 2-D valley is our reconstruction, not the paper's toy.",
    citation: "Kim, Shin, Yun, Baek, Song, Yun, \"AMUSE: Anytime Muon with Stable Gradient Evaluation\", HiLD@ICML 2026, arXiv 2605.22432 (code: kjeiun/amuse); Wen et al., \"Understanding Warmup-Stable-Decay Learning Rates: A River Valley Loss Landscape Perspective\", arXiv 2410.05192 (2024); Defazio et al., \"The Road Less Scheduled\", NeurIPS 2024, arXiv 2405.15682.",
};

/// `lora-spectrum`: spec §2.3.
const LORA_SPECTRUM: Guide = Guide {
    title: "Muon and SpecGD on a LoRA factorization: equal-rate spectral growth",
    claim: "Under spectral gradient flow, the continuous form of Muon's orthogonalized update, all singular values of a LoRA product BA grow at equal rates, so the smallest target singular values are reached first. Plain gradient descent from a small initialization learns them one at a time, largest first.",
    look_for: "Spectrum view: four lines per run (σ of BA against step), targets dashed at 8, 4, 2, 1. gd climbs to 8 first and reaches 1 last (spec §2.3: steps 122 … 924); specgd's four lines rise together, ≈ (ηt)², reaching 1 first and 8 last (191 … 538); muon (Newton–Schulz, no momentum) does the same a little later. The 16×16, rank-4 setting is our reconstruction: the paper's sizes were not available.",
    citation: "Kang, Yun, Shin, Cho, Yun, \"Uniform Spectral Growth and Convergence of Muon in LoRA-Style Matrix Factorization\", arXiv 2602.06385; Saxe, McClelland, Ganguli, \"Exact solutions to the nonlinear dynamics of learning in deep linear neural networks\", ICLR 2014; Gidel, Bach, Lacoste-Julien, \"Implicit regularization of discrete gradient dynamics in linear neural networks\", NeurIPS 2019.",
};

/// `rosenbrock`.
const ROSENBROCK: Guide = Guide {
    title: "Six optimizers in Rosenbrock's banana valley",
    claim: "Rosenbrock's function (a − x)² + b(y − x²)², here with a = 1 and b = 100, has a narrow curved valley: reaching the valley is easy, but following its nearly flat floor to the minimum at (1, 1) is slow for first-order methods.",
    look_for: "Landscape: every path starts at (−1.2, 1). Watch them drop into the curved valley within a few steps, then compare how far along its floor each has crept toward the asterisk at (1, 1) at the same step. adam and muon (which sees diag(x, y) and steps almost like sign descent) move about one learning rate per step whatever the gradient; the Schedule-Free runs and amuse show their averaged iterate. Loss view: the same race, log scale.",
    citation: "H. H. Rosenbrock, \"An automatic method for finding the greatest or least value of a function\", The Computer Journal 3(3), 1960; optimizers: Kingma, Ba, Adam, ICLR 2015 (arXiv 1412.6980); Jordan et al., Muon (2024, github.com/KellerJordan/Muon); Defazio et al., \"The Road Less Scheduled\", NeurIPS 2024 (arXiv 2405.15682); Kim et al., AMUSE (arXiv 2605.22432).",
};

/// `beale`.
const BEALE: Guide = Guide {
    title: "Six optimizers on Beale's function",
    claim: "Beale's function Σ_i (c_i − x + x·y^i)² with c = (1.5, 2.25, 2.625) has its minimum 0 at (3, 0.5) at the end of a narrow curved valley, between flat plateaus and steep walls where the gradient's size varies by orders of magnitude.",
    look_for: "Landscape (log-scaled heat map): all runs start at (1, 1.5); follow them into the valley that bends toward the asterisk at (3, 0.5). sgd-momentum's step scales with the gradient, so it crawls where the surface is flat, while adam's and muon's normalized steps stay near the learning rate. The Schedule-Free runs and amuse show their averaged iterate. Loss view: which run reaches the basin first.",
    citation: "E. M. L. Beale, \"On an iterative method for finding a local minimum of a function of more than one variable\", Technical Report 25, Statistical Techniques Research Group, Princeton University, 1958; optimizers: Kingma, Ba, Adam, ICLR 2015 (arXiv 1412.6980); Jordan et al., Muon (2024); Defazio et al., \"The Road Less Scheduled\" (arXiv 2405.15682); Kim et al., AMUSE (arXiv 2605.22432).",
};

/// `saddle`.
const SADDLE: Guide = Guide {
    title: "Escaping a saddle point",
    claim: "Near a saddle point the gradient is small, so gradient descent slows down and escapes only as the tiny component along the descent direction grows geometrically. In high-dimensional non-convex problems such saddles, rather than poor local minima, are the main obstacle.",
    look_for: "f = x²/2 − y²/2 + y^4/4: a saddle at (0, 0), minima −1/4 at (0, ±1) (asterisks). From (1, 0.01) the y-gradient is only −0.01: gradient steps first slide x toward the saddle and linger there, while adam's and muon's normalized steps move y by about the learning rate from the start. The Loss view plots loss + 1/4, so a run parked at the saddle shows a plateau near 0.25 before it drops.",
    citation: "Dauphin, Pascanu, Gulcehre, Cho, Ganguli, Bengio, \"Identifying and attacking the saddle point problem in high-dimensional non-convex optimization\", NeurIPS 2014, arXiv 1406.2572; optimizers: Kingma, Ba, Adam (arXiv 1412.6980); Jordan et al., Muon (2024); Defazio et al., \"The Road Less Scheduled\" (arXiv 2405.15682); Kim et al., AMUSE (arXiv 2605.22432).",
};

/// `quadratic`.
const QUADRATIC: Guide = Guide {
    title: "An ill-conditioned quadratic (κ = 50)",
    claim: "On a quadratic with condition number κ, gradient descent's linear rate is set by κ: it zig-zags across the steep direction while creeping along the flat one. Polyak's heavy-ball momentum improves the dependence from κ to sqrt(κ).",
    look_for: "½(u² + 50 v²) with its axes rotated 30° from x and y: tilted elliptical contours, minimum (asterisk) at 0, start (−1.5, 1.5). sgd-momentum spirals in, oscillating across the narrow direction. adam's early steps and muon's sign-like steps on diag(x, y) go roughly along the ±45° diagonals of the x/y axes, not along the ellipse: per-coordinate normalization is not rotation-invariant. Loss view: the rates side by side.",
    citation: "B. T. Polyak, \"Some methods of speeding up the convergence of iteration methods\", USSR Computational Mathematics and Mathematical Physics 4(5), 1964; optimizers: Kingma, Ba, Adam (arXiv 1412.6980); Jordan et al., Muon (2024); Defazio et al., \"The Road Less Scheduled\" (arXiv 2405.15682); Kim et al., AMUSE (arXiv 2605.22432).",
};

/// `mezo-quadratic`.
const MEZO_QUADRATIC: Guide = Guide {
    title: "MeZO against gradient descent on the quadratic",
    claim: "MeZO fine-tunes with forward passes only, in the memory of inference: two losses at θ ± εz give the gradient's projection on one random Gaussian direction z, and the step goes along z. The estimate is unbiased but noisy, so it trades steps for memory.",
    look_for: "Same quadratic, same start, 1000 steps. Landscape: mezo's path is a jagged walk around gd's, each step along one random direction; mezo-lr-0.003 takes smaller steps. Loss view: at the same learning rate mezo follows gd's decay, only noisier, since in 2-D one random direction loses little; at 0.003 it is slower. The estimate's noise grows with the number of parameters, the dimension dependence MeZO-BCD studies.",
    citation: "Malladi, Gao, Nichani, Damian, Lee, Chen, Arora, \"Fine-Tuning Language Models with Just Forward Passes\" (MeZO), NeurIPS 2023, arXiv 2305.17333 (code: princeton-nlp/MeZO); Park, Yun, Kim, Kundu, Yang, \"Elucidating Subspace Perturbation in Zeroth-Order Optimization: Theory and Practice at Scale\" (MeZO-BCD), arXiv 2501.19099.",
};

/// The Experiment lab's guide for preset `name` (one of
/// `optiscope_core::experiment::presets::PRESETS`), or the generic experiment guide for a name
/// that is not a preset.
pub fn experiment(name: &str) -> &'static Guide {
    match name {
        "river-valley" => &RIVER_VALLEY,
        "lora-spectrum" => &LORA_SPECTRUM,
        "rosenbrock" => &ROSENBROCK,
        "beale" => &BEALE,
        "saddle" => &SADDLE,
        "quadratic" => &QUADRATIC,
        "mezo-quadratic" => &MEZO_QUADRATIC,
        _ => &EXPERIMENT,
    }
}

// ---------------------------------------------------------------------------------------------
// The Quantization lab.
// ---------------------------------------------------------------------------------------------

/// The Quantization lab with a method it does not know.
const QUANTIZATION: Guide = Guide {
    title: "Weights on a quantization grid",
    claim: "A b-bit quantizer maps each weight to one of 2^b evenly spaced grid points; training through the rounding decides how much accuracy survives, and methods differ in how they learn the grid and whether they pull the full-precision weights onto it.",
    look_for: "Histogram of one layer's full-precision weights in bins of α/8, bars coloured by the grid point each weight is assigned to, solid lines at the grid points, dashed cell boundaries; the title gives bits, α, near_frac(0.1) and the MSE. Below: near_frac(0.1) per layer over training against the 0.2 line of uniform weights, and train/test accuracy per epoch.",
    citation: "Bengio, Léonard, Courville, \"Estimating or Propagating Gradients Through Stochastic Neurons for Conditional Computation\", arXiv 1308.3432 (2013); Esser et al., \"Learned Step Size Quantization\", ICLR 2020; Louizos, Reisser, Blankevoort, Gavves, Welling, \"Relaxed Quantization for Discretized Neural Networks\", ICLR 2019.",
};

/// `none`: full precision.
const QUANT_NONE: Guide = Guide {
    title: "Full-precision MLP on the digits",
    claim: "No quantizer: the same MLP trained in full precision is the baseline every quantizer is measured against. On the 8×8 UCI digits a small MLP reaches about 98 % test accuracy.",
    look_for: "The histogram shows the full-precision weights with no grid (no lines, one colour), and the near_frac panel says there is no grid. Watch train and test accuracy per epoch, then switch the quantizer in the left panel: data, widths, seed and optimizer stay the same, so the accuracy curves compare directly (BENCHMARKS, 64-128-10 MLP: 98.14 % full precision).",
    citation: "E. Alpaydin, C. Kaynak, \"Optical Recognition of Handwritten Digits\" data set, UCI Machine Learning Repository, 1998 (CC BY 4.0).",
};

/// `ste`: spec A5.
const QUANT_STE: Guide = Guide {
    title: "STE: uniform quantization with a straight-through gradient",
    claim: "The straight-through estimator passes the gradient through the rounding as if it were the identity (and zero outside the clipping range), so a network with quantized weights trains by ordinary backpropagation on latent full-precision weights.",
    look_for: "Grey grid lines with step α = max|w|/Q_P, recomputed every epoch (the lines shift at epoch boundaries); bars coloured by the nearest grid point. At 3–4 bits near_frac(0.1) stays near the 0.2 line of uniform weights: nothing pulls weights onto the grid. At 2 bits the grid is {−2, −1, 0, 1}·max|w|, most weights round to 0 and accuracy suffers (BENCHMARKS, 64-128-10 MLP: 85 ± 10 % against 98 % full precision).",
    citation: "Bengio, Léonard, Courville, \"Estimating or Propagating Gradients Through Stochastic Neurons for Conditional Computation\", arXiv 1308.3432 (2013).",
};

/// `lsq`: spec A5.
const QUANT_LSQ: Guide = Guide {
    title: "LSQ: a learned step size",
    claim: "Learned Step Size Quantization treats the quantizer's step as a parameter, trained by gradient descent with the weights through a scaled gradient, which keeps low-bit networks close to full-precision accuracy.",
    look_for: "α in the histogram's title is LSQ's learned step (initialized at 2·mean|w|/sqrt(Q_P)): watch it and the grey grid lines move as it trains. At 2 bits, where STE's max-based step sends most weights to 0, LSQ stays near full precision (BENCHMARKS, 64-128-10 MLP: 97.96 % against STE's 85.05 %). near_frac(0.1) stays near the 0.2 line: LSQ learns the grid, it does not cluster the weights on it.",
    citation: "Esser, McKinstry, Bablani, Appuswamy, Modha, \"Learned Step Size Quantization\", ICLR 2020, arXiv 1902.08153.",
};

/// `rq`: spec A1.
const QUANT_RQ: Guide = Guide {
    title: "Relaxed Quantization: a Gumbel-softmax over the grid",
    claim: "Adding noise to the weights induces a categorical distribution over the grid points; relaxing it with the Gumbel-softmax (concrete) distribution makes quantization differentiable, so the grid's step and the noise scale are learned with the weights.",
    look_for: "During training each forward pass uses a soft random sample over nearby grid points (temperature τ = 1); the header's test accuracy uses hard-quantized weights, each at its most probable point (the bar colours). α in the title is learned: watch the grey grid lines move. near_frac(0.1) shows how spread the weights stay between points (BENCHMARKS, layer 0: 0.24–0.29, barely above the 0.2 of uniform weights).",
    citation: "Louizos, Reisser, Blankevoort, Gavves, Welling, \"Relaxed Quantization for Discretized Neural Networks\", ICLR 2019, arXiv 1810.01875; Jang, Gu, Poole, \"Categorical Reparameterization with Gumbel-Softmax\", ICLR 2017.",
};

/// `srq`: spec A2.
const QUANT_SRQ: Guide = Guide {
    title: "Semi-Relaxed Quantization: a multi-class straight-through estimator",
    claim: "Relaxed Quantization's Gumbel-softmax needs a high temperature for low-variance gradients, which leaves a large quantization error. SRQ rounds to the categorical's mode in the forward pass and back-propagates through its probabilities (a multi-class straight-through estimator), and DropBits drops bits rather than neurons to reduce that estimator's bias.",
    look_for: "The forward pass is hard rounding, so the bars are coloured by their grid point, but the backward gain is the slope of the soft quantizer: small at the solid grid lines, large at the dashed cell boundaries (spec A2). Weights near a boundary move fastest, so watch near_frac(0.1) against the 0.2 line. Grid lines are grey unless DropBits is on; then they are coloured by bit level.",
    citation: "Lee, Yun, Hwang, Yang, \"Semi-Relaxed Quantization with DropBits\", arXiv 1911.12990 (2019).",
};

/// `cpq`: spec A3.
const QUANT_CPQ: Guide = Guide {
    title: "Cluster-Promoting Quantization with DropBits",
    claim: "CPQ learns the grid while making the full-precision weights gather cohesively around its points, from a categorical over the grid in the forward pass and a multi-class straight-through estimator in the backward pass. DropBits corrects that estimator's bias and, with a regularizer, learns each layer's bit-width.",
    look_for: "Grid lines coloured by bit level (1 = the coarsest sub-grid); DropBits (p = 0.3) drops finer levels at random in training. With learned bits, a level the gates switch off turns dotted and the title shows the learned width. Clustering shows as bars piling on the solid lines and near_frac(0.1) rising above 0.2; in BENCHMARKS' runs it stayed near 0.2–0.3 (the strong effect is the spec's isolated walk). DropBits' schedule: our reconstruction.",
    citation: "Lee, Yun, Hwang, Yang, \"Cluster-Promoting Quantization with Bit-Drop for Minimizing Network Quantization Loss\", ICCV 2021, arXiv 2109.02100; Louizos, Welling, Kingma, \"Learning Sparse Neural Networks through L0 Regularization\" (hard concrete), ICLR 2018.",
};

/// `proxquant`: spec A4.
const QUANT_PROXQUANT: Guide = Guide {
    title: "ProxQuant: a proximal step toward the grid",
    claim: "ProxQuant treats quantization as regularized learning with a W-shaped regularizer that vanishes exactly on the grid: after each gradient step a proximal step pulls every weight toward its nearest grid point, with a strength λ that grows during training. The revised version (ProxGen) takes that prox in Adam's preconditioned metric.",
    look_for: "λ = reg_rate·epoch grows every epoch: watch the histogram collapse onto the solid grid lines and near_frac(0.1) climb toward 1 (BENCHMARKS: 1.000 at 3 and 4 bits). Weights landed exactly on the 0 point show as the orange-red \"exactly 0\" bar and a share in the title. The step 2·mean|w|/sqrt(Q_P) is re-estimated each epoch, so the grid can shift under weights already pulled onto it.",
    citation: "Bai, Wang, Liberty, \"ProxQuant: Quantized Neural Networks via Proximal Operators\", ICLR 2019, arXiv 1810.00861; Yun, Lozano, Yang, \"Adaptive Proximal Gradient Methods for Structured Neural Networks\" (ProxGen), NeurIPS 2021.",
};

/// The Quantization lab's guide for quantizer `method` (`QuantMethod::name()`: "none", "ste",
/// "lsq", "rq", "srq", "cpq", "proxquant"), or a generic one for another name.
pub fn quantization(method: &str) -> &'static Guide {
    match method {
        "none" => &QUANT_NONE,
        "ste" => &QUANT_STE,
        "lsq" => &QUANT_LSQ,
        "rq" => &QUANT_RQ,
        "srq" => &QUANT_SRQ,
        "cpq" => &QUANT_CPQ,
        "proxquant" => &QUANT_PROXQUANT,
        _ => &QUANTIZATION,
    }
}

// ---------------------------------------------------------------------------------------------
// The Align lab.
// ---------------------------------------------------------------------------------------------

/// The Align lab on an edited config that is not a preset.
const ALIGN: Guide = Guide {
    title: "Preference learning on a contextual bandit",
    claim: "DPO fits the KL-regularized RLHF optimum π* = π_ref·exp(r/β)/Z directly, as logistic regression on preference pairs, with no reward model and no RL loop. In a linear-softmax bandit every sampler and objective can be run exactly and compared with π*.",
    look_for: "Sampler experiments: per-arm bars of π_ref (grey), π* and the chosen run's π̂ for one context, KL(π*‖π̂) per round against the labelled pairs (log scale), the feature-space coverage C_feat and the entropy per round. Other kinds: each step runs one run; pick a recorded value to plot per run and read the last values in the summary.json table. The left panel edits β, the fit and the runs.",
    citation: "Rafailov, Sharma, Mitchell, Ermon, Manning, Finn, \"Direct Preference Optimization: Your Language Model is Secretly a Reward Model\", NeurIPS 2023, arXiv 2305.18290.",
};

/// `coverage`: spec B2a.
const ALIGN_COVERAGE: Guide = Guide {
    title: "Offline, on-policy and hybrid DPO under poor coverage",
    claim: "On-policy DPO converges exponentially in the number of rounds once each round's batch exceeds a coverage threshold, while any learner restricted to offline samples from the initial policy has a slower minimax rate. A hybrid sampler built on a preferential G-optimal design removes the dependence on coverage and converges in two rounds.",
    look_for: "Bars: π_ref (grey) puts 0.25 % of its mass on the arms holding 90 % of π*'s, C_∞ = 5.740e2 in the header; the chosen run's π̂ in its colour, gold bars for the hybrid's design. KL (log) against pairs used: at 80 000 pairs on-policy beats offline; at 20 000 its small first batch overshoots and it often does worse; the hybrid is lowest in the median at both (BENCHMARKS). The setting is our reconstruction (spec B2a).",
    citation: "Kim, Yun, Lee, Jun, \"Coverage Improvement and Fast Convergence of On-policy Preference Learning\", ICML 2026, arXiv 2601.08421; Rafailov et al., \"Direct Preference Optimization\", NeurIPS 2023, arXiv 2305.18290.",
};

/// `rich-features`: spec B2b.
const ALIGN_RICH_FEATURES: Guide = Guide {
    title: "Rich features: pointwise coverage is not what matters",
    claim: "The coverage that limits preference learning is structural, not the pointwise ratio max π*/π_ref: with linear-softmax features offline DPO can converge even when that ratio is huge. For general classes the paper gives on-policy reward-distillation schemes with fast rates under a deviation-based coverage notion.",
    look_for: "The header's C_∞(π_ref) exceeds 1e4 over 50 contexts × 20 arms; pick a context to compare π*, π_ref and π̂. Yet offline's KL (log scale) ends low and the C_feat panel (feature-space coverage, our reconstruction) stays moderate, ≈ 38.5 in BENCHMARKS. On-policy reward distillation (also reconstructed) does about as well as offline; on-policy DPO is somewhat worse here.",
    citation: "Kim, Yun, Lee, Jun, \"Coverage Improvement and Fast Convergence of On-policy Preference Learning\", ICML 2026, arXiv 2601.08421; Rafailov et al., \"Direct Preference Optimization\", NeurIPS 2023, arXiv 2305.18290.",
};

/// `degeneracy`: spec B3.
const ALIGN_DEGENERACY: Guide = Guide {
    title: "Degenerate DPO against distribution learning",
    claim: "Read as loss plus regularization, the RLHF objective, and DPO with it, incentivizes degenerate, deterministic policies. Learning the target π* itself from preferences, by preference MLE, preference distillation or reverse-KL minimization, converges at O(1/n), preference distillation being best or on par.",
    look_for: "Each step runs one run; pick the value to plot. entropy: population DPO at β = 1 recovers π* (H = 1.495) and falls toward 0 as β drops to 0.05 (it is softmax(θ*γ/β)). logit_range (log): on 12 pairs with a never-winning arm, pmle's grows at every record (100 … 100 000 steps), while distillation and reverse-kl agree and stay bounded. The last two objectives are our reconstruction (spec B3).",
    citation: "Yun, Kim, Park, Kim, Ryu, Cho, Jun, \"Alignment as Distribution Learning\", arXiv 2506.01523 (v2: \"Beyond RLHF: A Unified Theoretical Framework of Alignment\").",
};

/// `grpo`: spec B4.
const ALIGN_GRPO: Guide = Guide {
    title: "GRPO on a Bernoulli bandit at four KL weights",
    claim: "GRPO drops PPO's value function: it samples a group of responses per prompt, standardizes their rewards within the group as advantages, and maximizes a clipped-ratio surrogate with a k3 KL penalty to the reference. With a small KL weight it is mode-seeking, concentrating on the best response.",
    look_for: "Runs grpo-kl=0.2, 0.04, 0.01 and 0 on six arms with success rates 0.9 … 0.1, plotted against iteration. pi_best climbs higher as the KL weight falls (BENCHMARKS medians 0.71, 0.93, 0.98, 0.99) and kl_ref grows with it; reward approaches the best arm's 0.9. Contrast the degeneracy preset: as the KL weight → 0, GRPO's optimum is the deterministic best arm.",
    citation: "Shao et al., \"DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models\", arXiv 2402.03300 (2024).",
};

/// `thinksafe`: spec B5.
const ALIGN_THINKSAFE: Guide = Guide {
    title: "ThinkSafe: refusal steering and self-generated safety data",
    claim: "Steering a reasoning model to refuse harmful prompts, keeping only its own guard-approved responses and fine-tuning the unsteered model on them gives better safety than GRPO with comparable reasoning at about a tenth of the compute. In theory self-generation plus filtering is the KL-optimal safe target, and a label-only tilt keeps the accepted distribution while raising acceptance.",
    look_for: "Runs rejection, prompt-tilt, activation and teacher; plot safety, kl_harmful or kl_benign against step. All become safe. In the table prompt-tilt needs about 4× fewer generations per accepted sample than rejection with accepted_excess_kl = 0 and lands near kl_floor (−log α_ref); the teacher pays more KL, on harmful contexts and about 8× on benign ones. The tiny policy is our reconstruction (spec B5).",
    citation: "Lee, Park, Choi, Kim, Kang, Yun, Park, Park, Hwang, ThinkSafe, arXiv 2601.23143 (code: seanie12/ThinkSafe).",
};

/// `multitask`: spec B6.
const ALIGN_MULTITASK: Guide = Guide {
    title: "Multi-task preference optimization after distillation",
    claim: "Raon-Speech builds a speech LM from a pre-trained LLM by end-to-end pre-training with knowledge distillation, then post-training with multi-task preference optimization. The exact distillation and preference objectives were not released.",
    look_for: "Five runs, task weights w = 1,0 … 0,1 on helpful and concise; x axis: stage 1 (after forward-KL distillation from the teacher) and stage 2 (after the weighted DPO fit). Plot kl_helpful and kl_concise: moving weight to one task lowers its KL and raises the other's; kl_teacher is kept best near equal weights (BENCHMARKS, 20 seeds). Both objectives are our reconstruction (spec B6).",
    citation: "KRAFTON, Raon-Speech technical report, arXiv 2605.23912.",
};

/// The Align lab's guide for preset `name` (`ALIGN_PRESETS`: coverage, rich-features,
/// degeneracy, grpo, thinksafe, multitask), or the generic align guide.
pub fn align(name: &str) -> &'static Guide {
    match name {
        "coverage" => &ALIGN_COVERAGE,
        "rich-features" => &ALIGN_RICH_FEATURES,
        "degeneracy" => &ALIGN_DEGENERACY,
        "grpo" => &ALIGN_GRPO,
        "thinksafe" => &ALIGN_THINKSAFE,
        "multitask" => &ALIGN_MULTITASK,
        _ => &ALIGN,
    }
}

// ---------------------------------------------------------------------------------------------
// The Compress lab.
// ---------------------------------------------------------------------------------------------

/// The Compress lab on a part it does not know.
const COMPRESS: Guide = Guide {
    title: "Compression: sparse graphs and dense students",
    claim: "Two compressions: TEDDY prunes a graph's edges in one shot from degree statistics, and an MoE can be turned into a dense model by selecting, concatenating and distilling its experts.",
    look_for: "TEDDY: the graph drawn node-link with pruned edges grey, degree histograms before and after, and test accuracy against the fraction of edges removed. MoE → dense: the routing heat map with the kept experts outlined, every scorer's error before and after distillation, and the distillation losses.",
    citation: "Seo, Yun, Yang, \"TEDDY: Trimming Edges with Degree-based Discrimination strategY\", ICLR 2024, arXiv 2402.01261; Kim, Yun, Kim, Kim, Bae, Cho, \"Pruning and Distilling MoE into Dense LMs\", arXiv 2605.28207.",
};

/// `teddy`: spec C1.
const COMPRESS_TEDDY: Guide = Guide {
    title: "TEDDY: degree-based edge sparsification of a GCN",
    claim: "TEDDY prunes edges in one shot from multi-level degree statistics, removing those whose endpoints and their neighbours have high degree, and sparsifies the weights by projected gradient descent on the ℓ0 ball with distillation from the dense model. It reaches the target graph and weight sparsity in a single training and beats iterative lottery-ticket methods such as UGS.",
    look_for: "Node-link plot: nodes coloured by community, removed edges grey, isolated nodes ringed red; move the slider and switch teddy, random and reverse. Degree histograms before and after; accuracy against the fraction removed fills in as the lab trains. TEDDY isolates far fewer nodes than reverse pruning, and the accuracy gaps are within the seed spread here (BENCHMARKS). The SBM is our stand-in: the paper's gains are on citation graphs.",
    citation: "Seo, Yun, Yang, \"TEDDY: Trimming Edges with Degree-based Discrimination strategY\", ICLR 2024, arXiv 2402.01261; Chen et al., \"A Unified Lottery Ticket Hypothesis for Graph Neural Networks\" (UGS), ICML 2021; Kipf, Welling, \"Semi-Supervised Classification with Graph Convolutional Networks\", ICLR 2017.",
};

/// `moe`: spec C2.
const COMPRESS_MOE: Guide = Guide {
    title: "MoE → dense: scoring, selecting and distilling experts",
    claim: "A trained mixture of experts can be converted into a standard dense model by scoring, selecting and grouping its experts, concatenating them into one dense FFN and distilling from the MoE. The scoring choice matters most, and diversity-aware (D-optimal) scoring works best.",
    look_for: "Heat map: mean gate of each expert (rows E0–E7; * marks the near-duplicate pairs E0/E1 and E2/E3) on each cluster's tokens; red outline: the experts the chosen scorer keeps. diversity never keeps both of a pair, frequency and gate-mass always do. Bars: every scorer's error before (grey) and after distillation; lines: the distillation losses (log). Scorers other than D-optimal are our reconstruction (spec C2).",
    citation: "Kim, Yun, Kim, Kim, Bae, Cho, \"Pruning and Distilling MoE into Dense LMs\", arXiv 2605.28207.",
};

/// The Compress lab's guide for its part: "teddy" or "moe" (a generic one otherwise).
pub fn compress(part: &str) -> &'static Guide {
    match part {
        "teddy" => &COMPRESS_TEDDY,
        "moe" => &COMPRESS_MOE,
        _ => &COMPRESS,
    }
}

// ---------------------------------------------------------------------------------------------
// The Transformer lab.
// ---------------------------------------------------------------------------------------------

/// The Transformer lab.
const TRANSFORMER: Guide = Guide {
    title: "AdamW, Muon and AMUSE on a character-level GPT",
    claim: "Muon orthogonalizes the momentum of each hidden weight matrix with a Newton–Schulz iteration (embeddings, head and gains stay on AdamW) and trains transformers faster than AdamW. Schedule-Free methods and AMUSE aim to be good at any stopping time without a learning-rate schedule, by evaluating at an average of the iterates.",
    look_for: "Left: loss per character, training batches as lines, validation at each optimizer's evaluation point as dots (the average for AMUSE and SF-AdamW). Right: singular values of the chosen block's four matrices, largest first, one line style each: Muon's and AMUSE's should stay flatter than AdamW's. Below: text sampled from each run. BENCHMARKS, tuned, similar scale: Muon beat AdamW; AMUSE trailed at its default auxiliary rate.",
    citation: "Jordan et al., Muon (2024), github.com/KellerJordan/Muon; Loshchilov, Hutter, \"Decoupled Weight Decay Regularization\" (AdamW), ICLR 2019; Defazio et al., \"The Road Less Scheduled\", NeurIPS 2024, arXiv 2405.15682; Kim, Shin, Yun, Baek, Song, Yun, \"AMUSE: Anytime Muon with Stable Gradient Evaluation\", arXiv 2605.22432; Karpathy, nanoGPT (github.com/karpathy/nanoGPT) and char-rnn's tiny Shakespeare.",
};

/// The Transformer lab's guide.
pub fn transformer() -> &'static Guide {
    &TRANSFORMER
}

#[cfg(test)]
mod tests {
    use super::*;
    use optiscope_core::align::experiment::ALIGN_PRESETS;
    use optiscope_core::experiment::presets::PRESETS;
    use optiscope_core::quant::QuantMethod;

    /// The quantizers the lab offers, as `QuantMethod::name()` spells them.
    const QUANT_METHODS: [&str; 7] = ["none", "ste", "lsq", "rq", "srq", "cpq", "proxquant"];

    /// Every panel, fallbacks included.
    fn all() -> Vec<&'static Guide> {
        let mut v = vec![&EXPERIMENT, &QUANTIZATION, &ALIGN, &COMPRESS, transformer()];
        v.extend(PRESETS.iter().map(|p| experiment(p.name)));
        v.extend(QUANT_METHODS.into_iter().map(quantization));
        v.extend(ALIGN_PRESETS.iter().map(|p| align(p.name)));
        v.extend(["teddy", "moe"].into_iter().map(compress));
        v
    }

    /// `guide(name)` for every name is its own panel: not `fallback`, and no two names share one.
    fn own_guides<'a>(
        names: impl IntoIterator<Item = &'a str>,
        guide: fn(&str) -> &'static Guide,
        fallback: &Guide,
    ) {
        let mut seen: Vec<&str> = vec![];
        for name in names {
            let g = guide(name);
            assert_ne!(g, fallback, "{name} falls back to the generic guide");
            assert_ne!(g.title, fallback.title, "{name}");
            assert!(
                !seen.contains(&g.title),
                "{name} shares its guide {:?}",
                g.title
            );
            seen.push(g.title);
        }
        assert_eq!(guide("no such name"), fallback);
    }

    #[test]
    fn every_experiment_preset_has_its_own_guide() {
        own_guides(PRESETS.iter().map(|p| p.name), experiment, &EXPERIMENT);
    }

    #[test]
    fn every_quantizer_has_its_own_guide() {
        own_guides(QUANT_METHODS, quantization, &QUANTIZATION);
        own_guides(
            QuantMethod::ALL.iter().map(|m| m.name()),
            quantization,
            &QUANTIZATION,
        );
    }

    #[test]
    fn every_align_preset_has_its_own_guide() {
        own_guides(ALIGN_PRESETS.iter().map(|p| p.name), align, &ALIGN);
    }

    #[test]
    fn both_compress_parts_have_their_own_guide() {
        own_guides(["teddy", "moe"], compress, &COMPRESS);
    }

    #[test]
    fn every_guide_is_filled_in_and_short() {
        for g in all() {
            for (field, text) in [
                ("title", g.title),
                ("claim", g.claim),
                ("look_for", g.look_for),
                ("citation", g.citation),
            ] {
                assert!(!text.trim().is_empty(), "{}: empty {field}", g.title);
                assert_eq!(text.trim(), text, "{}: {field} has outer spaces", g.title);
            }
            assert!(g.title.chars().count() <= 80, "{}: long title", g.title);
            assert!(
                g.claim.matches(". ").count() <= 1,
                "{}: the claim has more than two sentences",
                g.title
            );
            assert!(
                g.claim.chars().count() <= 400,
                "{}: the claim has {} characters",
                g.title,
                g.claim.chars().count()
            );
            assert!(
                g.look_for.chars().count() <= 450,
                "{}: look_for has {} characters",
                g.title,
                g.look_for.chars().count()
            );
        }
    }
}
