/*
 * SSIMULACRA2, the perceptual metric of the JPEG XL project (libjxl's
 * tools/ssimulacra2.cc, BSD-3-Clause, (c) the JPEG XL Project Authors), computed
 * the same way on 8-bit sRGB pixels:
 *
 *   sRGB -> linear RGB -> XYB (opsin absorbance, cube root), made positive;
 *   at 6 scales (1:1 to 1:32, halved in linear RGB): a Gaussian blur (sigma 1.5)
 *   of both images, their squares and product; an SSIM map without the luma
 *   gamma term, and "ringing" / "blurring" edge maps; the 1-norm and 4-norm of
 *   each of the 54 maps, weighted (libjxl's 108 weights) into one score.
 *
 * libjxl blurs with a recursive filter (Charalampidis' truncated cosines, zero
 * outside the image). Its impulse response is exactly a 9-tap kernel, so the same
 * kernel is applied here directly (computed from the recursion in double at load),
 * which vectorises in both directions.
 *
 * The reference image's planes (XYB, blurred XYB, blurred square) are computed
 * once per scale and kept, so scoring several candidates against one reference
 * costs a little over half of a full computation each.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NUM_SCALES 6
#define SIGMA 1.5
#define MAX_RADIUS 8
/* The kernel's reach: libjxl's radius N is 5 (checked at load), but the response of its
 * recursion to an impulse is 9 taps wide: the taps at +-5 are zero. */
#define RADIUS 4
#define RING (2 * RADIUS + 1)
#define C2 0.0009f

static float kernel[2 * MAX_RADIUS + 1];
static int radius;  /* libjxl's N, 5 for sigma 1.5 */
static float srgb_to_linear_lut[256];

static const double weights[108] = {
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
    0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
    0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
    11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072,
    0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967,
    0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398,
    0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296,
    1.027889937768264, 225.20515300849274, 0.0, 0.0, 19.213238186143016,
    0.0011401524586618361, 0.001237755635509985, 176.39317598450694, 0.0, 0.0,
    24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
    34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0,
    0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336,
    0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
    23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353,
    0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
    0.0005130064588990679, 0.0, 0.00010854057858411537,
};

/* libjxl's opsin absorbance matrix and bias (lib/jxl/cms/opsin_params.h). */
static const float M[9] = {
    0.30f, 0.622f, 0.078f,
    0.23f, 0.692f, 0.078f,
    0.24342268924547819f, 0.20476744424496821f, 1.0f - 0.24342268924547819f - 0.20476744424496821f,
};
#define BIAS 0.0037930732552754493f

/* The blur kernel: the recursive filter's response to an impulse, run in double. */
static void init_kernel(void) {
    const double pi = 3.141592653589793238;
    const double r = round(3.2795 * SIGMA + 0.2546);
    const double w[3] = {pi / (2 * r), 3 * pi / (2 * r), 5 * pi / (2 * r)};
    const double p1 = 1.0 / tan(0.5 * w[0]), p3 = -1.0 / tan(0.5 * w[1]),
                 p5 = 1.0 / tan(0.5 * w[2]);
    const double r1 = p1 * p1 / sin(w[0]), r3 = -p3 * p3 / sin(w[1]),
                 r5 = p5 * p5 / sin(w[2]);
    double rho[3];
    for (int i = 0; i < 3; i++) rho[i] = exp(-0.5 * SIGMA * SIGMA * w[i] * w[i]) / r;
    const double d13 = p1 * r3 - r1 * p3, d35 = p3 * r5 - r3 * p5, d51 = p5 * r1 - r5 * p1;
    const double z15 = d35 / d13, z35 = d51 / d13;
    /* beta = A^-1 gamma, A = [[p1 p3 p5] [r1 r3 r5] [z15 z35 1]] (Cramer's rule). */
    const double a[9] = {p1, p3, p5, r1, r3, r5, z15, z35, 1.0};
    const double g[3] = {1.0, r * r - SIGMA * SIGMA, z15 * rho[0] + z35 * rho[1] + rho[2]};
    const double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6])
                       + a[2] * (a[3] * a[7] - a[4] * a[6]);
    double beta[3];
    for (int col = 0; col < 3; col++) {
        double m[9];
        memcpy(m, a, sizeof m);
        for (int row = 0; row < 3; row++) m[row * 3 + col] = g[row];
        beta[col] = (m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
                     + m[2] * (m[3] * m[7] - m[4] * m[6])) / det;
    }
    const int n = (int)r;
    double n2[3], d1[3];
    for (int i = 0; i < 3; i++) {
        n2[i] = -beta[i] * cos(w[i] * (r + 1.0));
        d1[i] = -2.0 * cos(w[i]);
    }
    /* Feed an impulse at position `centre` and read the outputs around it. */
    enum { LEN = 4 * MAX_RADIUS + 8 };
    const int centre = 2 * MAX_RADIUS + 2;
    double prev[3] = {0}, prev2[3] = {0}, out[LEN] = {0};
    for (int k = -n + 1; k < LEN; k++) {
        const int left = k - n - 1, right = k + n - 1;
        const double in = (left == centre ? 1.0 : 0.0) + (right == centre ? 1.0 : 0.0);
        double sum = 0.0;
        for (int i = 0; i < 3; i++) {
            const double y = n2[i] * in - d1[i] * prev[i] - prev2[i];
            prev2[i] = prev[i];
            prev[i] = y;
            sum += y;
        }
        if (k >= 0) out[k] = sum;
    }
    radius = n;
    for (int k = -RADIUS; k <= RADIUS; k++) kernel[k + RADIUS] = (float)out[centre + k];
    for (int v = 0; v < 256; v++) {
        const double s = v / 255.0;
        srgb_to_linear_lut[v] = (float)(s <= 0.04045 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4));
    }
}

static inline float srgb_to_linear(float s) {
    return s <= 0.04045f ? s / 12.92f : powf((s + 0.055f) / 1.055f, 2.4f);
}

/* Cube root of a positive float: exponent trick (3.5 % off at most), then two Halley
 * steps, which take it to float precision. */
static inline float cbrt_positive(float x) {
    union { float f; int32_t i; } v = {.f = x};
    /* i / 3 through float (exact enough for a first guess), which vectorises. */
    v.i = (int32_t)((float)v.i * (1.0f / 3.0f)) + 709921077;
    float y = v.f;
    for (int i = 0; i < 2; i++) {
        const float y3 = y * y * y;
        y = y * (y3 + 2.0f * x) / (2.0f * y3 + x);
    }
    return y;
}

/* Linear RGB (planar) to positive XYB (planar), both 3 planes of n floats. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static void linear_to_xyb(const float *restrict lin, float *restrict xyb, size_t n) {
    const float cb = cbrt_positive(BIAS);
    const float m00 = M[0], m01 = M[1], m02 = M[2], m10 = M[3], m11 = M[4], m12 = M[5],
                m20 = M[6], m21 = M[7], m22 = M[8];
    const float *restrict r = lin, *restrict g = lin + n, *restrict b = lin + 2 * n;
    float *restrict X = xyb, *restrict Y = xyb + n, *restrict B = xyb + 2 * n;
    for (size_t i = 0; i < n; i++) {
        float m0 = m00 * r[i] + m01 * g[i] + m02 * b[i] + BIAS;
        float m1 = m10 * r[i] + m11 * g[i] + m12 * b[i] + BIAS;
        float m2 = m20 * r[i] + m21 * g[i] + m22 * b[i] + BIAS;
        m0 = cbrt_positive(m0 > 0.0f ? m0 : 0.0f) - cb;
        m1 = cbrt_positive(m1 > 0.0f ? m1 : 0.0f) - cb;
        m2 = cbrt_positive(m2 > 0.0f ? m2 : 0.0f) - cb;
        const float x = 0.5f * (m0 - m1), y = 0.5f * (m0 + m1);
        X[i] = x * 14.0f + 0.42f;
        Y[i] = y + 0.01f;
        B[i] = (m2 - y) + 0.55f;
    }
}

/* One output of the 9 taps at x, zero outside [0, w). */
static inline float blur_at(const float *row, int x, int w) {
    float s = 0.0f;
    for (int k = -RADIUS; k <= RADIUS; k++)
        if (x + k >= 0 && x + k < w) s += kernel[k + RADIUS] * row[x + k];
    return s;
}

/* One row through the 9 taps, zero outside [0, w). RADIUS is a constant, so the
 * interior loop vectorises. */
static inline void blur_row(const float *restrict row, float *restrict dst, int w) {
    const float k0 = kernel[RADIUS], k1 = kernel[RADIUS + 1], k2 = kernel[RADIUS + 2],
                k3 = kernel[RADIUS + 3], k4 = kernel[RADIUS + 4];
    const int inner = w > 2 * RADIUS ? w - RADIUS : RADIUS; /* [RADIUS, inner) needs no test */
    for (int x = 0; x < w && x < RADIUS; x++) dst[x] = blur_at(row, x, w);
    /* Pointer steps with a fresh counter: Python builds extensions with -fwrapv, and with
     * an int index that may wrap the loop compiled to gathers, several times slower. */
    const float *restrict p = row + RADIUS;
    float *restrict q = dst + RADIUS;
    for (ptrdiff_t i = 0, n = inner - RADIUS; i < n; i++) {
        q[i] = k0 * p[i] + k1 * (p[i - 1] + p[i + 1]) + k2 * (p[i - 2] + p[i + 2])
               + k3 * (p[i - 3] + p[i + 3]) + k4 * (p[i - 4] + p[i + 4]);
    }
    for (int x = inner > RADIUS ? inner : RADIUS; x < w; x++) dst[x] = blur_at(row, x, w);
}

/* Separable blur with zero padding. Rows are filtered into a ring of 2 * RADIUS + 1 rows
 * (`ring` holds that many rows of w floats), which the column pass reads while they are
 * still in cache; each output row is written once. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static void blur_plane(const float *restrict in, float *restrict ring, float *restrict out,
                       int w, int h) {
    enum { TAPS = 2 * RADIUS + 1 };
    const float k0 = kernel[RADIUS], k1 = kernel[RADIUS + 1], k2 = kernel[RADIUS + 2],
                k3 = kernel[RADIUS + 3], k4 = kernel[RADIUS + 4];
    int filtered = 0; /* rows [0, filtered) have been through blur_row */
    for (int y = 0; y < h; y++) {
        for (; filtered < h && filtered <= y + RADIUS; filtered++)
            blur_row(in + (size_t)filtered * w, ring + (size_t)(filtered % TAPS) * w, w);
        float *restrict dst = out + (size_t)y * w;
        if (y >= RADIUS && y + RADIUS < h) {
            const float *r[TAPS];
            for (int k = 0; k < TAPS; k++) r[k] = ring + (size_t)((y - RADIUS + k) % TAPS) * w;
            const float *restrict a4 = r[0], *restrict a3 = r[1], *restrict a2 = r[2];
            const float *restrict a1 = r[3], *restrict c = r[4], *restrict b1 = r[5];
            const float *restrict b2 = r[6], *restrict b3 = r[7], *restrict b4 = r[8];
            for (int x = 0; x < w; x++)
                dst[x] = k0 * c[x] + k1 * (a1[x] + b1[x]) + k2 * (a2[x] + b2[x])
                         + k3 * (a3[x] + b3[x]) + k4 * (a4[x] + b4[x]);
            continue;
        }
        memset(dst, 0, sizeof(float) * w);
        for (int k = -RADIUS; k <= RADIUS; k++) {
            const int yy = y + k;
            if (yy < 0 || yy >= h) continue;
            const float kk = kernel[k + RADIUS];
            const float *src = ring + (size_t)(yy % TAPS) * w;
            for (int x = 0; x < w; x++) dst[x] += kk * src[x];
        }
    }
}

__attribute__((target_clones("arch=x86-64-v3", "default")))
static void multiply(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

/* Halve linear RGB (3 planes), repeating the last row/column when the size is odd. */
static void downsample(const float *in, int w, int h, float *out, int ow, int oh) {
    for (int c = 0; c < 3; c++) {
        const float *p = in + (size_t)c * w * h;
        float *q = out + (size_t)c * ow * oh;
        for (int oy = 0; oy < oh; oy++) {
            const int y0 = 2 * oy, y1 = 2 * oy + 1 < h ? 2 * oy + 1 : h - 1;
            for (int ox = 0; ox < ow; ox++) {
                const int x0 = 2 * ox, x1 = 2 * ox + 1 < w ? 2 * ox + 1 : w - 1;
                q[(size_t)oy * ow + ox] = (p[(size_t)y0 * w + x0] + p[(size_t)y0 * w + x1]
                                           + p[(size_t)y1 * w + x0] + p[(size_t)y1 * w + x1])
                                          * 0.25f;
            }
        }
    }
}

/* Interleaved 8-bit RGB or RGBA to linear R, G and B planes; alpha blended on `bg`
 * (as libjxl). */
static void to_linear_planes(const uint8_t *px, int bands, size_t n, float bg, float *r,
                             float *g, float *b) {
    if (bands == 3) {
        for (size_t i = 0; i < n; i++) {
            r[i] = srgb_to_linear_lut[px[3 * i]];
            g[i] = srgb_to_linear_lut[px[3 * i + 1]];
            b[i] = srgb_to_linear_lut[px[3 * i + 2]];
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = px + 4 * i;
        if (p[3] == 255) {
            r[i] = srgb_to_linear_lut[p[0]];
            g[i] = srgb_to_linear_lut[p[1]];
            b[i] = srgb_to_linear_lut[p[2]];
            continue;
        }
        const float a = p[3] / 255.0f;
        r[i] = srgb_to_linear(a * (p[0] / 255.0f) + (1.0f - a) * bg);
        g[i] = srgb_to_linear(a * (p[1] / 255.0f) + (1.0f - a) * bg);
        b[i] = srgb_to_linear(a * (p[2] / 255.0f) + (1.0f - a) * bg);
    }
}

/* Interleaved 8-bit pixels to planar linear RGB (3 planes of n floats). */
static void to_linear(const uint8_t *px, int bands, size_t n, float bg, float *lin) {
    to_linear_planes(px, bands, n, bg, lin, lin + n, lin + 2 * n);
}

/* Raw sums of one channel's maps over a rectangle (x0, y0, w, h) of planes `stride` floats
 * wide: SSIM (1, 4) then ringing (1, 4), blurring (1, 4), the 4-norms as sums of 4th
 * powers. Each row is summed in float (vectorised), rows in double. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static void channel_sums(const float *i1, const float *m1, const float *s11, const float *i2,
                         const float *m2, const float *s22, const float *s12, int stride,
                         int x0, int y0, int w, int h, double sums[6]) {
    for (int y = y0; y < y0 + h; y++) {
        const size_t o = (size_t)y * stride + x0;
        float r0 = 0, r1 = 0, e0 = 0, e1 = 0, e2 = 0, e3 = 0;
        for (int x = 0; x < w; x++) {
            /* In double: the variances are small differences of close numbers, and
             * the build reassociates sums, so float would leave rounding noise where
             * the two images are equal. */
            const double mu1 = m1[o + x], mu2v = m2[o + x];
            const double num_m = 1.0 - (mu1 - mu2v) * (mu1 - mu2v);
            const double num_s = 2.0 * ((double)s12[o + x] - mu1 * mu2v) + C2;
            const double denom_s = ((double)s11[o + x] - mu1 * mu1)
                                   + ((double)s22[o + x] - mu2v * mu2v) + C2;
            float d = (float)(1.0 - num_m * num_s / denom_s);
            d = d > 0.0f ? d : 0.0f;
            const float d2 = d * d;
            r0 += d;
            r1 += d2 * d2;
            const float e = (1.0f + fabsf(i2[o + x] - m2[o + x]))
                            / (1.0f + fabsf(i1[o + x] - m1[o + x])) - 1.0f;
            const float art = e > 0.0f ? e : 0.0f, lost = e < 0.0f ? -e : 0.0f;
            const float a2 = art * art, l2 = lost * lost;
            e0 += art;
            e1 += a2 * a2;
            e2 += lost;
            e3 += l2 * l2;
        }
        sums[0] += r0;
        sums[1] += r1;
        sums[2] += e0;
        sums[3] += e1;
        sums[4] += e2;
        sums[5] += e3;
    }
}

/* One scale's 18 norms from its channels' raw sums over `pixels` pixels. */
static void sums_to_norms(double sums[3][6], double pixels, double *ssim_avg, double *edge_avg) {
    const double per_pixel = 1.0 / pixels;
    for (int c = 0; c < 3; c++) {
        ssim_avg[c * 2] = per_pixel * sums[c][0];
        ssim_avg[c * 2 + 1] = sqrt(sqrt(per_pixel * sums[c][1]));
        edge_avg[c * 4] = per_pixel * sums[c][2];
        edge_avg[c * 4 + 1] = sqrt(sqrt(per_pixel * sums[c][3]));
        edge_avg[c * 4 + 2] = per_pixel * sums[c][4];
        edge_avg[c * 4 + 3] = sqrt(sqrt(per_pixel * sums[c][5]));
    }
}

/* As libjxl: when a small image has fewer than 6 scales, the weights are still taken in
 * order, so later channels use the slots of the missing scales. */
static double final_score(double ssim_avg[][6], double edge_avg[][12], int scales) {
    double ssim = 0.0;
    size_t i = 0;
    for (int c = 0; c < 3; c++) {
        for (int s = 0; s < scales; s++) {
            for (int k = 0; k < 2; k++) {
                ssim += weights[i++] * fabs(ssim_avg[s][c * 2 + k]);
                ssim += weights[i++] * fabs(edge_avg[s][c * 4 + k]);
                ssim += weights[i++] * fabs(edge_avg[s][c * 4 + k + 2]);
            }
        }
    }
    ssim *= 0.9562382616834844;
    ssim = 2.326765642916932 * ssim - 0.020884521182843837 * ssim * ssim
           + 6.248496625763138e-05 * ssim * ssim * ssim;
    return ssim > 0.0 ? 100.0 - 10.0 * pow(ssim, 0.6276336467831387) : 100.0;
}

/* ---- Windows ----
 *
 * Every map is local: a pixel of scale s depends on the pixels within RADIUS of it at that
 * scale. So each scale is cut into tiles, and a tile's maps are computed on a window of
 * RADIUS more on each side, small enough to stay in cache while its five blurs run; the
 * sums over the tiles' own pixels are the sums over the plane. */

/* A tile's own pixels (ix, iy, iw, ih) and its window (wx, wy, ww, wh), in the
 * coordinates of the plane it is cut from. */
typedef struct {
    int ix, iy, iw, ih, wx, wy, ww, wh;
} Tile;

/* The tile of own pixels [x0, x1) x [y0, y1) of a w x h plane, its window clipped to the
 * plane (where the clip bites, the plane's edge is the image's, which the blur pads with
 * zeros as the whole computation does). */
static Tile tile_of(int x0, int y0, int x1, int y1, int w, int h) {
    Tile t = {x0, y0, x1 - x0, y1 - y0, 0, 0, 0, 0};
    t.wx = x0 > RADIUS ? x0 - RADIUS : 0;
    t.wy = y0 > RADIUS ? y0 - RADIUS : 0;
    t.ww = (x1 + RADIUS < w ? x1 + RADIUS : w) - t.wx;
    t.wh = (y1 + RADIUS < h ? y1 + RADIUS : h) - t.wy;
    return t;
}

/* The end of the tile that starts at `start` of `side` px on a line of `length`: a last
 * piece under a quarter tile joins the tile before it. */
static int tile_end(int start, int side, int length) {
    const int end = start + side;
    return end + side / 4 >= length ? length : end;
}

/* Tiles of about `side` px covering a w x h plane, row by row; their count. `out` (NULL to
 * count only) receives them. */
static int cut_tiles(int w, int h, int side, Tile *out) {
    int count = 0;
    for (int y = 0; y < h; y = tile_end(y, side, h))
        for (int x = 0; x < w; x = tile_end(x, side, w)) {
            if (out) out[count] = tile_of(x, y, tile_end(x, side, w), tile_end(y, side, h), w, h);
            count++;
        }
    return count;
}

/* The most pixels, and the widest row, of a window of a tile of about `side` px. */
#define WINDOW_SIDE(side) ((side) + (side) / 4 + 2 * RADIUS)

/* Working memory for one window: the distorted image's XYB and maps, the reference's
 * planes when they are not kept (see `prepare_window`), and the blur's rows. */
typedef struct {
    float *lin, *xyb, *mu, *s22, *s12, *mul, *ref, *ring;
} Window;

static void free_window(Window *wb) {
    free(wb->lin);
    free(wb->xyb);
    free(wb->mu);
    free(wb->s22);
    free(wb->s12);
    free(wb->mul);
    free(wb->ref);
    free(wb->ring);
}

static int alloc_window(Window *wb, int side, int with_reference) {
    const size_t n = (size_t)WINDOW_SIDE(side) * WINDOW_SIDE(side);
    memset(wb, 0, sizeof *wb);
    wb->lin = malloc(sizeof(float) * 3 * n);
    wb->xyb = malloc(sizeof(float) * 3 * n);
    wb->mu = malloc(sizeof(float) * n);
    wb->s22 = malloc(sizeof(float) * n);
    wb->s12 = malloc(sizeof(float) * n);
    wb->mul = malloc(sizeof(float) * n);
    wb->ref = with_reference ? malloc(sizeof(float) * 9 * n) : NULL;
    wb->ring = malloc(sizeof(float) * RING * WINDOW_SIDE(side));
    return wb->lin && wb->xyb && wb->mu && wb->s22 && wb->s12 && wb->mul
           && (wb->ref || !with_reference) && wb->ring;
}

/* A tile's window of a planar linear plane `rw` x `rh`, as XYB in `xyb`. */
static void window_xyb(const float *plane, int rw, int rh, const Tile *t, Window *wb,
                       float *xyb) {
    const size_t n = (size_t)t->ww * t->wh;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < t->wh; y++)
            memcpy(wb->lin + c * n + (size_t)y * t->ww,
                   plane + (size_t)c * rw * rh + (size_t)(t->wy + y) * rw + t->wx,
                   sizeof(float) * t->ww);
    linear_to_xyb(wb->lin, xyb, n);
}

/* The reference's planes of one window into `planes` (9 of ww * wh floats): XYB, its
 * blur, the blur of its square, 3 channels each. */
static void prepare_window(const float *plane, int rw, int rh, const Tile *t, Window *wb,
                           float *planes) {
    const size_t n = (size_t)t->ww * t->wh;
    window_xyb(plane, rw, rh, t, wb, planes);
    for (int c = 0; c < 3; c++) {
        const float *x = planes + c * n;
        blur_plane(x, wb->ring, planes + 3 * n + c * n, t->ww, t->wh);
        multiply(x, x, wb->mul, n);
        blur_plane(wb->mul, wb->ring, planes + 6 * n + c * n, t->ww, t->wh);
    }
}

/* Adds the raw sums of one window of the distorted plane against the reference's planes
 * of the same window (from `prepare_window`). */
static void compare_window(const float *planes, const float *plane, int rw, int rh,
                           const Tile *t, Window *wb, double sums[3][6]) {
    const size_t n = (size_t)t->ww * t->wh;
    window_xyb(plane, rw, rh, t, wb, wb->xyb);
    for (int c = 0; c < 3; c++) {
        const float *a = planes + c * n, *b = wb->xyb + c * n;
        blur_plane(b, wb->ring, wb->mu, t->ww, t->wh);
        multiply(b, b, wb->mul, n);
        blur_plane(wb->mul, wb->ring, wb->s22, t->ww, t->wh);
        multiply(a, b, wb->mul, n);
        blur_plane(wb->mul, wb->ring, wb->s12, t->ww, t->wh);
        channel_sums(a, planes + 3 * n + c * n, planes + 6 * n + c * n, b, wb->mu, wb->s22,
                     wb->s12, t->ww, t->ix - t->wx, t->iy - t->wy, t->iw, t->ih, sums[c]);
    }
}

/* ---- A reference kept for several candidates ---- */

/* Tiles of this many px a side: a window's 16 planes (about 1 MB) stay in a core's L2. */
#define TILE 128

/* One scale of the reference: its size, tiles, and each tile's 9 planes. */
typedef struct {
    int w, h, count;
    Tile *tiles;
    float **planes;
} Scale;

typedef struct {
    int width, height, scales;
    Scale scale[NUM_SCALES];
} Reference;

static void free_reference(Reference *ref) {
    for (int s = 0; s < NUM_SCALES; s++) {
        Scale *sc = &ref->scale[s];
        for (int i = 0; sc->planes && i < sc->count; i++) free(sc->planes[i]);
        free(sc->planes);
        free(sc->tiles);
    }
    free(ref);
}

/* Halves both planar linear images' planes in place of the buffers (`spare` is a
 * buffer of the same size, swapped in). */
static void halve(float **lin, float **spare, int *w, int *h) {
    const int ow = (*w + 1) / 2, oh = (*h + 1) / 2;
    downsample(*lin, *w, *h, *spare, ow, oh);
    float *t = *lin;
    *lin = *spare;
    *spare = t;
    *w = ow;
    *h = oh;
}

/* The number of scales of a w x h image: as libjxl, a scale is made while the one before
 * is at least 8 px a side. Their sizes go to sw, sh. */
static int count_scales(int w, int h, int sw[NUM_SCALES], int sh[NUM_SCALES]) {
    int scales = 0;
    for (; scales < NUM_SCALES; scales++) {
        if (w < 8 || h < 8) break;
        if (scales) {
            w = (w + 1) / 2;
            h = (h + 1) / 2;
        }
        sw[scales] = w;
        sh[scales] = h;
    }
    return scales;
}

/* The score from the sums over a whole `width` x `height` image. */
static double score_of_sums(double sums[NUM_SCALES][3][6], int width, int height) {
    int sw[NUM_SCALES], sh[NUM_SCALES];
    const int scales = count_scales(width, height, sw, sh);
    double ssim_avg[NUM_SCALES][6] = {{0}}, edge_avg[NUM_SCALES][12] = {{0}};
    for (int s = 0; s < scales; s++)
        sums_to_norms(sums[s], (double)sw[s] * sh[s], ssim_avg[s], edge_avg[s]);
    return final_score(ssim_avg, edge_avg, scales);
}

/* Builds every scale of the reference; NULL when out of memory. */
static Reference *build_reference(const uint8_t *px, int bands, int w, int h, float bg) {
    Reference *ref = calloc(1, sizeof(Reference));
    const size_t n = (size_t)w * h;
    float *lin = malloc(sizeof(float) * 3 * n), *spare = malloc(sizeof(float) * 3 * n);
    Window wb;
    int ok = alloc_window(&wb, TILE, 0) && ref && lin && spare;
    if (ok) {
        int sw[NUM_SCALES], sh[NUM_SCALES];
        ref->width = w;
        ref->height = h;
        ref->scales = count_scales(w, h, sw, sh);
        to_linear(px, bands, n, bg, lin);
        for (int s = 0; ok && s < ref->scales; s++) {
            if (s) halve(&lin, &spare, &w, &h);
            Scale *sc = &ref->scale[s];
            sc->w = w;
            sc->h = h;
            sc->count = cut_tiles(w, h, TILE, NULL);
            sc->tiles = malloc(sizeof(Tile) * sc->count);
            sc->planes = calloc(sc->count, sizeof(float *));
            ok = sc->tiles && sc->planes;
            if (ok) cut_tiles(w, h, TILE, sc->tiles);
            for (int i = 0; ok && i < sc->count; i++) {
                const Tile *t = &sc->tiles[i];
                sc->planes[i] = malloc(sizeof(float) * 9 * (size_t)t->ww * t->wh);
                ok = sc->planes[i] != NULL;
                if (ok) prepare_window(lin, w, h, t, &wb, sc->planes[i]);
            }
        }
    }
    free(lin);
    free(spare);
    free_window(&wb);
    if (!ok && ref) {
        free_reference(ref);
        ref = NULL;
    }
    return ref;
}

/* The score of a distorted image against a built reference; NaN when out of memory. */
static double compare(const Reference *ref, const uint8_t *px, int bands, float bg) {
    int w = ref->width, h = ref->height;
    const size_t n = (size_t)w * h;
    double sums[NUM_SCALES][3][6] = {{{0}}};
    float *lin = malloc(sizeof(float) * 3 * n), *spare = malloc(sizeof(float) * 3 * n);
    Window wb;
    double score = NAN;
    if (alloc_window(&wb, TILE, 0) && lin && spare) {
        to_linear(px, bands, n, bg, lin);
        for (int s = 0; s < ref->scales; s++) {
            if (s) halve(&lin, &spare, &w, &h);
            const Scale *sc = &ref->scale[s];
            for (int i = 0; i < sc->count; i++)
                compare_window(sc->planes[i], lin, w, h, &sc->tiles[i], &wb, sums[s]);
        }
        score = score_of_sums(sums, ref->width, ref->height);
    }
    free(lin);
    free(spare);
    free_window(&wb);
    return score;
}

/* ---- One comparison in bounded memory ----
 *
 * Kept whole, the reference and a candidate need about 100 bytes a pixel, too much for a
 * large photo. A pixel of scale s also sums a 2^s square of the full-size image, so the
 * image is cut into tiles on a grid of 2^(NUM_SCALES-1) px, and each is read with a
 * margin of HALO px (RADIUS at the coarsest scale) from which all its scales are made;
 * at each scale its window is that scale's tile (`tile_of`). The sums over the tiles' own
 * pixels are the sums over the image, so the score is the whole computation's, up to
 * float rounding. */

#define GRID (1 << (NUM_SCALES - 1))
#define HALO (RADIUS << (NUM_SCALES - 1))

/* Planar linear RGB of the rectangle (x, y, w, h) of an interleaved image `stride` px wide. */
static void region_linear(const uint8_t *px, int bands, int stride, int x, int y, int w, int h,
                          float bg, float *lin) {
    const size_t n = (size_t)w * h;
    for (int row = 0; row < h; row++) {
        const size_t o = (size_t)row * w;
        to_linear_planes(px + ((size_t)(y + row) * stride + x) * bands, bands, (size_t)w, bg,
                         lin + o, lin + n + o, lin + 2 * n + o);
    }
}

/* Adds to `sums` the sums of the tiles whose own rows are [top, bottom) of a band of
 * two images, both `width` x `height` px (the band holds HALO rows above and below them
 * where the image has them). `top` and `bottom` are on the grid or at the image's edge. */
static int band_sums(const uint8_t *px1, const uint8_t *px2, int bands, int width, int height,
                     int top, int bottom, float bg, int tile, int scales,
                     double sums[NUM_SCALES][3][6]) {
    tile = tile < GRID ? GRID : tile - tile % GRID;
    const size_t most = (size_t)(tile + tile / 4 + 2 * HALO) * height;
    float *r1 = malloc(sizeof(float) * 3 * most), *r2 = malloc(sizeof(float) * 3 * most);
    float *spare = malloc(sizeof(float) * 3 * most);
    Window wb;
    const int ok = alloc_window(&wb, TILE, 1) && r1 && r2 && spare;
    for (int tx = 0; ok && tx < width; tx = tile_end(tx, tile, width)) {
        const int tx1 = tile_end(tx, tile, width);
        const int rx = tx > HALO ? tx - HALO : 0;
        int rw = (tx1 + HALO < width ? tx1 + HALO : width) - rx, rh = height;
        region_linear(px1, bands, width, rx, 0, rw, rh, bg, r1);
        region_linear(px2, bands, width, rx, 0, rw, rh, bg, r2);
        for (int s = 0; s < scales; s++) {
            if (s) {
                int w2 = rw, h2 = rh;
                halve(&r1, &spare, &rw, &rh);
                halve(&r2, &spare, &w2, &h2);
            }
            /* The tile's own pixels at this scale (the grid keeps them whole), in windows
             * of TILE px. */
            const int step = (1 << s) - 1;
            const int ox = (tx - rx) >> s, oy = top >> s;
            const int ox1 = (tx1 - rx + step) >> s, oy1 = (bottom + step) >> s;
            for (int y = oy; y < oy1; y = oy + tile_end(y - oy, TILE, oy1 - oy))
                for (int x = ox; x < ox1; x = ox + tile_end(x - ox, TILE, ox1 - ox)) {
                    const Tile t = tile_of(x, y, ox + tile_end(x - ox, TILE, ox1 - ox),
                                           oy + tile_end(y - oy, TILE, oy1 - oy), rw, rh);
                    prepare_window(r1, rw, rh, &t, &wb, wb.ref);
                    compare_window(wb.ref, r2, rw, rh, &t, &wb, sums[s]);
                }
        }
    }
    free(r1);
    free(r2);
    free(spare);
    free_window(&wb);
    return ok;
}

/* ---- Python glue ---- */

#define CAPSULE_NAME "feather_core._ssimulacra2.Reference"

static void capsule_destructor(PyObject *capsule) {
    Reference *ref = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (ref) free_reference(ref);
}

static int check_pixels(Py_buffer *buf, int width, int height, int bands) {
    if (width < 1 || height < 1 || (bands != 3 && bands != 4)) {
        PyErr_SetString(PyExc_ValueError, "need a positive size and 3 or 4 bands");
        return -1;
    }
    if (buf->len != (Py_ssize_t)width * height * bands) {
        PyErr_SetString(PyExc_ValueError, "buffer does not hold width * height * bands bytes");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(reference_doc,
"reference(pixels, width, height, bands, background) -> capsule\n\n"
"Prepare an 8-bit sRGB image (RGB or RGBA, alpha blended on `background`,\n"
"0..1) as the reference of later `compare` calls.");

static PyObject *py_reference(PyObject *self, PyObject *args) {
    Py_buffer buf;
    int width, height, bands;
    float bg;
    if (!PyArg_ParseTuple(args, "y*iiif", &buf, &width, &height, &bands, &bg)) return NULL;
    if (check_pixels(&buf, width, height, bands) != 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    Reference *ref;
    Py_BEGIN_ALLOW_THREADS
    ref = build_reference(buf.buf, bands, width, height, bg);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (!ref) return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(ref, CAPSULE_NAME, capsule_destructor);
    if (!capsule) free_reference(ref);
    return capsule;
}

PyDoc_STRVAR(compare_doc,
"compare(reference, pixels, bands, background) -> float\n\n"
"The SSIMULACRA2 score of a distorted image of the reference's size.");

static PyObject *py_compare(PyObject *self, PyObject *args) {
    PyObject *capsule;
    Py_buffer buf;
    int bands;
    float bg;
    if (!PyArg_ParseTuple(args, "Oy*if", &capsule, &buf, &bands, &bg)) return NULL;
    Reference *ref = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (!ref) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (check_pixels(&buf, ref->width, ref->height, bands) != 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    double score;
    Py_BEGIN_ALLOW_THREADS
    score = compare(ref, buf.buf, bands, bg);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (isnan(score)) return PyErr_NoMemory();
    return PyFloat_FromDouble(score);
}

#define SUMS (NUM_SCALES * 3 * 6)

PyDoc_STRVAR(band_sums_doc,
"band_sums(original, distorted, width, height, bands, background, top, bottom, tile,\n"
"          full_width, full_height) -> tuple of floats\n\n"
"The raw sums of the maps over rows [top, bottom) of a band of two 8-bit sRGB images\n"
"(`width` x `height`, RGB or RGBA), for an image of `full_width` x `full_height`.\n"
"The band holds HALO rows above and below those rows where the image has them;\n"
"`top` and `bottom` lie on the GRID or at the image's edge. Adding the sums of bands\n"
"that cover the image and passing them to `score_of_sums` gives the image's score,\n"
"in memory of a few bands.");

static PyObject *py_band_sums(PyObject *self, PyObject *args) {
    Py_buffer one, two;
    int width, height, bands, top, bottom, tile, full_width, full_height;
    float bg;
    if (!PyArg_ParseTuple(args, "y*y*iiifiiiii", &one, &two, &width, &height, &bands, &bg,
                          &top, &bottom, &tile, &full_width, &full_height))
        return NULL;
    int sw[NUM_SCALES], sh[NUM_SCALES];
    const int scales = count_scales(full_width, full_height, sw, sh);
    double sums[NUM_SCALES][3][6] = {{{0}}};
    int ok = check_pixels(&one, width, height, bands) == 0
             && check_pixels(&two, width, height, bands) == 0;
    if (ok && (top < 0 || bottom > height || top >= bottom)) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= top < bottom <= height");
        ok = 0;
    }
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        ok = band_sums(one.buf, two.buf, bands, width, height, top, bottom, bg, tile, scales,
                       sums);
        Py_END_ALLOW_THREADS
        if (!ok) PyErr_NoMemory();
    }
    PyBuffer_Release(&one);
    PyBuffer_Release(&two);
    if (!ok) return NULL;
    PyObject *out = PyTuple_New(SUMS);
    if (!out) return NULL;
    const double *flat = &sums[0][0][0];
    for (int i = 0; i < SUMS; i++) {
        PyObject *value = PyFloat_FromDouble(flat[i]);
        if (!value) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, value);
    }
    return out;
}

PyDoc_STRVAR(score_of_sums_doc,
"score_of_sums(sums, width, height) -> float\n\n"
"The SSIMULACRA2 score of a `width` x `height` image from its bands' added sums.");

static PyObject *py_score_of_sums(PyObject *self, PyObject *args) {
    PyObject *seq;
    int width, height;
    if (!PyArg_ParseTuple(args, "Oii", &seq, &width, &height)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "sums must be a sequence");
    if (!fast) return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != SUMS) {
        Py_DECREF(fast);
        return PyErr_Format(PyExc_ValueError, "need %d sums", SUMS);
    }
    double sums[NUM_SCALES][3][6];
    double *flat = &sums[0][0][0];
    for (int i = 0; i < SUMS; i++) flat[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
    Py_DECREF(fast);
    if (PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(score_of_sums(sums, width, height));
}

static PyMethodDef methods[] = {
    {"reference", py_reference, METH_VARARGS, reference_doc},
    {"compare", py_compare, METH_VARARGS, compare_doc},
    {"band_sums", py_band_sums, METH_VARARGS, band_sums_doc},
    {"score_of_sums", py_score_of_sums, METH_VARARGS, score_of_sums_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "feather_core._ssimulacra2",
    "SSIMULACRA2 (libjxl's perceptual metric) on 8-bit sRGB images.", -1, methods,
};

PyMODINIT_FUNC PyInit__ssimulacra2(void) {
    init_kernel();
    if (radius != RADIUS + 1) {
        PyErr_SetString(PyExc_ImportError, "unexpected blur kernel size");
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "GRID", GRID) < 0
              || PyModule_AddIntConstant(m, "HALO", HALO) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
