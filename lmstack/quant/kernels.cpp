// Weight-only quantized matrix products for CPU decoding: y[b, n] = sum_k x[b, k] * W[n, k],
// with W stored as int8 or 4-bit codes plus float scales, never expanded to a float matrix.
//
// Decoding is memory-bound: every weight is read once per token. Reading 1 (int8) or 0.5
// (int4) bytes per weight instead of 4 (fp32) is the whole speed-up, so the kernels turn codes
// into floats in registers, right before the multiply-add. One output row per task: the row's
// codes are read once and used for every batch row (the batch sits in L1/L2).
// Threads: at::parallel_for, so torch.set_num_threads governs them as it does torch's own ops.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

namespace {

constexpr int64_t BLOCK = 32;  // llama.cpp's block: 32 weights share one nibble layout
constexpr int MAXB = 8;  // batch rows that share one pass over a weight row

#if defined(__AVX512F__)
inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// 16 int8 codes -> 16 floats.
inline __m512 i8_to_f32(const int8_t* q) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)q)));
}
#endif

// One output row n, NB batch rows from b0: the row's codes are decoded once for all of them.
// NB is a compile-time constant so the NB accumulators stay in registers.
template <int NB>
void int8_row(const float* x, const int8_t* row, const float* s, float* y, int64_t N, int64_t K,
              int64_t G, int64_t n, int64_t b0) {
  const int64_t gs = K / G;
  float acc[NB] = {};
  for (int64_t g = 0; g < G; ++g) {
    float part[NB] = {};
    int64_t k = g * gs;
    const int64_t end = k + gs;
#if defined(__AVX512F__)
    __m512 v[NB];
    for (int i = 0; i < NB; ++i) v[i] = _mm512_setzero_ps();
    for (; k + 16 <= end; k += 16) {
      const __m512 w = i8_to_f32(row + k);
      for (int i = 0; i < NB; ++i)
        v[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + (b0 + i) * K + k), v[i]);
    }
    for (int i = 0; i < NB; ++i) part[i] = hsum(v[i]);
#endif
    for (; k < end; ++k)  // the tail (and the whole row without AVX-512)
      for (int i = 0; i < NB; ++i) part[i] += float(row[k]) * x[(b0 + i) * K + k];
    for (int i = 0; i < NB; ++i) acc[i] += s[g] * part[i];
  }
  for (int i = 0; i < NB; ++i) y[(b0 + i) * N + n] = acc[i];
}

// int4: codes qs [N, K / 2], two per byte in llama.cpp's order (within each block of 32,
// byte j holds weight j in its low nibble and weight j + 16 in its high one); each group of
// `gs` weights (a multiple of 32) decodes as w = d * code + m. xsum [B, G] holds the sum of x
// over each group, so the minimum costs one multiply per group: sum(x * (d q + m)) =
// d * sum(x q) + m * sum(x).
template <int NB>
void int4_row(const float* x, const float* xsum, const uint8_t* row, const float* d,
              const float* m, float* y, int64_t N, int64_t K, int64_t G, int64_t n, int64_t b0) {
  const int64_t gs = K / G;
  float acc[NB] = {};
  for (int64_t g = 0; g < G; ++g) {
    float part[NB] = {};
#if defined(__AVX512F__)
    __m512 v[NB];
    for (int i = 0; i < NB; ++i) v[i] = _mm512_setzero_ps();
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for (int64_t k = g * gs; k < (g + 1) * gs; k += BLOCK) {
      const __m128i bytes = _mm_loadu_si128((const __m128i*)(row + k / 2));
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(bytes, low4)));
      const __m512 hi = _mm512_cvtepi32_ps(
          _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4)));
      for (int i = 0; i < NB; ++i) {
        const float* xb = x + (b0 + i) * K + k;
        v[i] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xb), v[i]);
        v[i] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), v[i]);
      }
    }
    for (int i = 0; i < NB; ++i) part[i] = hsum(v[i]);
#else
    for (int64_t k = g * gs; k < (g + 1) * gs; k += BLOCK)
      for (int64_t j = 0; j < 16; ++j) {
        const uint8_t byte = row[k / 2 + j];
        for (int i = 0; i < NB; ++i) {
          const float* xb = x + (b0 + i) * K + k;
          part[i] += float(byte & 0x0F) * xb[j] + float(byte >> 4) * xb[j + 16];
        }
      }
#endif
    for (int i = 0; i < NB; ++i) acc[i] += d[g] * part[i] + m[g] * xsum[(b0 + i) * G + g];
  }
  for (int i = 0; i < NB; ++i) y[(b0 + i) * N + n] = acc[i];
}

// Every batch row of output rows [n0, n1): MAXB rows at a time, then the remainder.
template <typename Row>
void each_row(int64_t B, int64_t n0, int64_t n1, Row row) {
  for (int64_t n = n0; n < n1; ++n) {
    int64_t b0 = 0;
    for (; b0 + MAXB <= B; b0 += MAXB) row(std::integral_constant<int, MAXB>{}, n, b0);
    switch (B - b0) {
      case 1: row(std::integral_constant<int, 1>{}, n, b0); break;
      case 2: row(std::integral_constant<int, 2>{}, n, b0); break;
      case 3: row(std::integral_constant<int, 3>{}, n, b0); break;
      case 4: row(std::integral_constant<int, 4>{}, n, b0); break;
      case 5: row(std::integral_constant<int, 5>{}, n, b0); break;
      case 6: row(std::integral_constant<int, 6>{}, n, b0); break;
      case 7: row(std::integral_constant<int, 7>{}, n, b0); break;
      default: break;
    }
  }
}

// Rows per task: enough work to pay for a task, few enough that both threads stay busy.
int64_t grain(int64_t N) { return std::max<int64_t>(16, N / 64); }

}  // namespace

torch::Tensor int8_matmul(torch::Tensor x, torch::Tensor q, torch::Tensor s) {
  // x [B, K] float32, q [N, K] int8, s [N, G] float32 -> [B, N] float32
  const int64_t B = x.size(0), K = x.size(1), N = q.size(0), G = s.size(1);
  auto y = torch::empty({B, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const int8_t* qp = q.data_ptr<int8_t>();
  const float* sp = s.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, grain(N), [&](int64_t n0, int64_t n1) {
    each_row(B, n0, n1, [&](auto nb, int64_t n, int64_t b0) {
      int8_row<decltype(nb)::value>(xp, qp + n * K, sp + n * G, yp, N, K, G, n, b0);
    });
  });
  return y;
}

torch::Tensor int4_matmul(torch::Tensor x, torch::Tensor qs, torch::Tensor d, torch::Tensor m) {
  // x [B, K] float32, qs [N, K / 2] uint8, d and m [N, G] float32 -> [B, N] float32
  const int64_t B = x.size(0), K = x.size(1), N = qs.size(0), G = d.size(1);
  auto xsum = x.view({B, G, K / G}).sum(-1).contiguous();  // [B, G]
  auto y = torch::empty({B, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* xs = xsum.data_ptr<float>();
  const uint8_t* qp = qs.data_ptr<uint8_t>();
  const float* dp = d.data_ptr<float>();
  const float* mp = m.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, grain(N), [&](int64_t n0, int64_t n1) {
    each_row(B, n0, n1, [&](auto nb, int64_t n, int64_t b0) {
      int4_row<decltype(nb)::value>(xp, xs, qp + n * K / 2, dp + n * G, mp + n * G, yp, N, K, G,
                                    n, b0);
    });
  });
  return y;
}

std::string simd_path() {
#if defined(__AVX512F__)
  return "avx512";
#else
  return "scalar";
#endif
}
