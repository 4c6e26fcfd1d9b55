/**
 * The ranking formula of docs/ranking.md, as a pure function of each candidate's aggregates: no
 * database, no clock. The test recomputes it independently from raw sessions.
 *
 * Each metric is put on a common scale within the model (a robust z-score across the model's
 * candidates: median and median absolute deviation, clipped to ±3), quality metrics are shrunk
 * toward the model's median by how much independent evidence a provider has, each z becomes a
 * part in (0, 1) through the logistic function, and the score is the weighted mean of the parts.
 */
import type { RankingConfig, RankingWeights } from "../config.js";

/** What the database knows about one candidate (an active bid of an active provider) in the window. */
export interface CandidateData {
  provider: string;
  bidId: string;
  pricePerSecond: string;
  pricePerInputToken: string;
  pricePerOutputToken: string;
  /** Active stake, in token base units. */
  stake: string;
  sessions: number;
  ratedSessions: number;
  successfulSessions: number;
  /** Sums over counted sessions, each weighted by what it paid. */
  paid: number;
  ratedPaid: number;
  successfulPaid: number;
  tpsSum: number;
  tpsSquareSum: number;
  ttftSum: number;
  ttftSquareSum: number;
  servedSeconds: number;
  /** Distinct paying consumers, and the sum of the squares of what each paid (for the effective count). */
  consumers: number;
  consumerPaidSquareSum: number;
  probesOk: number;
  probesTotal: number;
}

export type PartName = keyof RankingWeights;

export interface RankingMetrics {
  sessions: number;
  ratedSessions: number;
  successfulSessions: number;
  successRate: number | null;
  tpsMean: number | null;
  tpsStdDev: number | null;
  ttftMsMean: number | null;
  ttftMsStdDev: number | null;
  /** Mean coefficient of variation of TPS and TTFT (lower is steadier). */
  variation: number | null;
  servedSeconds: number;
  paid: number;
  consumers: number;
  /** Effective number of independent payers: (Σ paid)² / Σ paid². */
  evidence: number;
  /** evidence / (evidence + priorStrength): how far quality parts move from the model's mean. */
  credibility: number;
  stake: number;
  /** Price of the reference workload: 1,000 output tokens and their input, generated at the model's typical speed. */
  pricePer1kTokens: number;
  uptime: number | null;
  probes: number;
}

export interface RankedProvider {
  rank: number;
  provider: string;
  bidId: string;
  score: number;
  parts: Record<PartName, number>;
  metrics: RankingMetrics;
}

interface MetricDefinition {
  part: PartName;
  /** +1: higher is better; -1: lower is better. */
  direction: 1 | -1;
  /** Quality measured by consumers: shrunk toward the model's mean by credibility. */
  shrunk: boolean;
  value(metrics: RankingMetrics): number | null;
}

const log1p = (value: number) => Math.log1p(Math.max(0, value));

/** The metric behind each part, its direction and whether it is shrunk (docs/ranking.md, "Parts"). */
export const METRICS: readonly MetricDefinition[] = [
  { part: "throughput", direction: 1, shrunk: true, value: (m) => m.tpsMean },
  { part: "latency", direction: -1, shrunk: true, value: (m) => m.ttftMsMean },
  { part: "consistency", direction: -1, shrunk: true, value: (m) => m.variation },
  { part: "success", direction: 1, shrunk: true, value: (m) => m.successRate },
  { part: "volume", direction: 1, shrunk: false, value: (m) => log1p(m.paid) },
  { part: "duration", direction: 1, shrunk: false, value: (m) => log1p(m.servedSeconds) },
  { part: "consumers", direction: 1, shrunk: false, value: (m) => log1p(m.evidence) },
  { part: "stake", direction: 1, shrunk: false, value: (m) => log1p(m.stake) },
  { part: "price", direction: -1, shrunk: false, value: (m) => log1p(m.pricePer1kTokens) },
  { part: "availability", direction: 1, shrunk: false, value: (m) => m.uptime },
];

export const logistic = (z: number) => 1 / (1 + Math.exp(-z));

function weightedMoments(weight: number, sum: number, squareSum: number) {
  if (weight <= 0) return { mean: null, stdDev: null };
  const mean = sum / weight;
  return { mean, stdDev: Math.sqrt(Math.max(0, squareSum / weight - mean * mean)) };
}

/**
 * A candidate's metrics. `modelTps` is the model's typical speed: time-priced bids are priced for
 * the time the reference workload takes at that speed, the same for everyone, so a provider's own
 * (consumer-reported, fakeable) speed never lowers its price — speed counts in `throughput`.
 */
export function metricsOf(data: CandidateData, config: RankingConfig, modelTps: number): RankingMetrics {
  const tps = weightedMoments(data.successfulPaid, data.tpsSum, data.tpsSquareSum);
  const ttft = weightedMoments(data.successfulPaid, data.ttftSum, data.ttftSquareSum);
  const variations = [
    tps.mean !== null && tps.mean > 0 ? tps.stdDev / tps.mean : null,
    ttft.mean !== null && ttft.mean > 0 ? ttft.stdDev / ttft.mean : null,
  ].filter((value): value is number => value !== null);
  const evidence = data.consumerPaidSquareSum > 0 ? (data.paid * data.paid) / data.consumerPaidSquareSum : 0;
  const pricePer1kTokens =
    1000 * Number(data.pricePerOutputToken) +
    1000 * config.inputTokensPerOutputToken * Number(data.pricePerInputToken) +
    (1000 / modelTps) * Number(data.pricePerSecond);
  return {
    sessions: data.sessions,
    ratedSessions: data.ratedSessions,
    successfulSessions: data.successfulSessions,
    successRate: data.ratedPaid > 0 ? data.successfulPaid / data.ratedPaid : null,
    tpsMean: tps.mean,
    tpsStdDev: tps.stdDev,
    ttftMsMean: ttft.mean,
    ttftMsStdDev: ttft.stdDev,
    variation: variations.length === 0 ? null : variations.reduce((a, b) => a + b, 0) / variations.length,
    servedSeconds: data.servedSeconds,
    paid: data.paid,
    consumers: data.consumers,
    evidence,
    credibility: evidence / (evidence + config.priorStrength),
    stake: Number(data.stake),
    pricePer1kTokens,
    uptime: data.probesTotal > 0 ? data.probesOk / data.probesTotal : null,
    probes: data.probesTotal,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The model's typical speed: the median of its providers' mean TPS, else the configured default. */
export function modelTpsOf(candidates: readonly CandidateData[], config: RankingConfig): number {
  const speeds = candidates.filter((c) => c.successfulPaid > 0 && c.tpsSum > 0).map((c) => c.tpsSum / c.successfulPaid);
  return speeds.length > 0 ? median(speeds) : config.defaultTps;
}

/** A z-score never counts for more than this many spreads: one fake extreme cannot dominate. */
export const Z_LIMIT = 3;
/** MAD × 1.4826 estimates the standard deviation of normal data. */
const MAD_TO_SIGMA = 1.4826;

/**
 * Robust z-scores of one metric across candidates: distance from the median in units of the
 * scaled median absolute deviation (the standard deviation when that is zero), clipped to ±3.
 * 0 where the metric is unknown, with fewer than two known values, or when nothing varies.
 */
export function robustZScores(values: readonly (number | null)[]): number[] {
  const known = values.filter((value): value is number => value !== null);
  if (known.length < 2) return values.map(() => 0);
  const center = median(known);
  let spread = MAD_TO_SIGMA * median(known.map((value) => Math.abs(value - center)));
  if (spread === 0) {
    const mean = known.reduce((a, b) => a + b, 0) / known.length;
    spread = Math.sqrt(known.reduce((sum, value) => sum + (value - mean) ** 2, 0) / known.length);
  }
  return values.map((value) =>
    value === null || spread === 0 ? 0 : Math.max(-Z_LIMIT, Math.min(Z_LIMIT, (value - center) / spread)),
  );
}

/** Ranks every candidate of a model: best first, ties broken by lower price, then address. */
export function rankCandidates(candidates: readonly CandidateData[], config: RankingConfig): RankedProvider[] {
  const modelTps = modelTpsOf(candidates, config);
  const metrics = candidates.map((candidate) => metricsOf(candidate, config, modelTps));
  const parts = candidates.map(() => ({}) as Record<PartName, number>);
  for (const definition of METRICS) {
    const z = robustZScores(metrics.map((m) => definition.value(m)));
    z.forEach((score, index) => {
      const shrink = definition.shrunk ? metrics[index]!.credibility : 1;
      parts[index]![definition.part] = logistic(definition.direction * score * shrink);
    });
  }
  const weights = config.weights;
  const totalWeight = METRICS.reduce((sum, definition) => sum + weights[definition.part], 0);
  const ranked = candidates.map((candidate, index) => ({
    rank: 0,
    provider: candidate.provider,
    bidId: candidate.bidId,
    score: METRICS.reduce((sum, d) => sum + weights[d.part] * parts[index]![d.part], 0) / totalWeight,
    parts: parts[index]!,
    metrics: metrics[index]!,
  }));
  ranked.sort(
    (a, b) =>
      b.score - a.score ||
      a.metrics.pricePer1kTokens - b.metrics.pricePer1kTokens ||
      (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0),
  );
  ranked.forEach((entry, index) => (entry.rank = index + 1));
  return ranked;
}
