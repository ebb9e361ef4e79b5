/*
 * Lanczos-3 resampling of 8-bit rows, vectorised.
 *
 * Pillow's Lanczos filter is scalar C: about 80 ms for a 6 MP photo to 1600 px,
 * where the same filter written so the compiler can vectorise it takes about a
 * third of that. The trick is to only ever filter along columns: every output
 * row is a weighted sum of whole input rows, so the inner loop runs over
 * contiguous bytes whatever the number of channels, and AVX2/FMA (chosen at load
 * time by the function's target clones) handles eight of them per instruction.
 * Filtering along rows is done by transposing the image first (Pillow's
 * transpose is cheap) and filtering columns again.
 *
 * The weights are Pillow's: the same kernel, support, centre and normalisation,
 * so results match Pillow's LANCZOS within rounding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SUPPORT 3.0
#define CHUNK 2048

static double lanczos(double x) {
    if (x == 0.0) return 1.0;
    if (x <= -SUPPORT || x >= SUPPORT) return 0.0;
    double px = M_PI * x;
    return SUPPORT * sin(px) * sin(px / SUPPORT) / (px * px);
}

/* Per output index: the first input index, how many follow, and their weights. */
static int compute_weights(int in_size, double span, int out_size, int **starts_out,
                           int **counts_out, float **weights_out, int *ksize_out) {
    double scale = span / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = SUPPORT * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *starts = malloc(sizeof(int) * out_size);
    int *counts = malloc(sizeof(int) * out_size);
    float *weights = calloc((size_t)out_size * ksize, sizeof(float));
    if (!starts || !counts || !weights) {
        free(starts); free(counts); free(weights);
        return -1;
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        if (xmax - xmin > ksize) xmax = xmin + ksize;
        double total = 0.0;
        float *w = weights + (size_t)i * ksize;
        for (int x = 0; x < xmax - xmin; x++) {
            double value = lanczos((x + xmin - center + 0.5) / filterscale);
            w[x] = (float)value;
            total += value;
        }
        if (total != 0.0)
            for (int x = 0; x < xmax - xmin; x++) w[x] = (float)(w[x] / total);
        starts[i] = xmin;
        counts[i] = xmax - xmin;
    }
    *starts_out = starts; *counts_out = counts; *weights_out = weights; *ksize_out = ksize;
    return 0;
}

__attribute__((target_clones("arch=x86-64-v3", "default")))
static void filter_columns(const uint8_t *src, Py_ssize_t rowbytes, uint8_t *dst, int out_rows,
                           const int *starts, const int *counts, const float *weights,
                           int ksize) {
    float acc[CHUNK];
    for (int y = 0; y < out_rows; y++) {
        const float *wy = weights + (size_t)y * ksize;
        for (Py_ssize_t c0 = 0; c0 < rowbytes; c0 += CHUNK) {
            Py_ssize_t n = rowbytes - c0 < CHUNK ? rowbytes - c0 : CHUNK;
            for (Py_ssize_t i = 0; i < n; i++) acc[i] = 0.5f;  /* rounds on truncation */
            for (int k = 0; k < counts[y]; k++) {
                const uint8_t *row = src + (Py_ssize_t)(starts[y] + k) * rowbytes + c0;
                float wk = wy[k];
                for (Py_ssize_t i = 0; i < n; i++) acc[i] += wk * (float)row[i];
            }
            uint8_t *out = dst + (Py_ssize_t)y * rowbytes + c0;
            for (Py_ssize_t i = 0; i < n; i++) {
                float v = acc[i];
                v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
                out[i] = (uint8_t)v;
            }
        }
    }
}

PyDoc_STRVAR(resample_rows_doc,
"resample_rows(data, rows, rowbytes, out_rows, span=rows) -> bytes\n\n"
"Lanczos-3 resample an 8-bit image of `rows` rows of `rowbytes` bytes each to\n"
"`out_rows` rows (filtering along columns; channels are just more columns).\n"
"`span` is how many input rows the output covers, from row 0: less than `rows`\n"
"when the last input row stands for a partial block of a box reduction.");

static PyObject *resample_rows(PyObject *self, PyObject *args) {
    Py_buffer src;
    int rows, out_rows;
    Py_ssize_t rowbytes;
    double span = -1.0;
    if (!PyArg_ParseTuple(args, "y*ini|d", &src, &rows, &rowbytes, &out_rows, &span))
        return NULL;
    if (span < 0.0) span = rows;
    if (rows < 1 || out_rows < 1 || rowbytes < 1 || src.len < (Py_ssize_t)rows * rowbytes
        || !(span > 0.0 && span <= rows)) {
        PyBuffer_Release(&src);
        PyErr_SetString(PyExc_ValueError, "buffer does not hold rows * rowbytes bytes");
        return NULL;
    }
    int *starts, *counts, ksize;
    float *weights;
    if (compute_weights(rows, span, out_rows, &starts, &counts, &weights, &ksize) != 0) {
        PyBuffer_Release(&src);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)out_rows * rowbytes);
    if (out != NULL) {
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        const uint8_t *data = (const uint8_t *)src.buf;
        Py_BEGIN_ALLOW_THREADS
        filter_columns(data, rowbytes, dst, out_rows, starts, counts, weights, ksize);
        Py_END_ALLOW_THREADS
    }
    free(starts); free(counts); free(weights);
    PyBuffer_Release(&src);
    return out;
}

static PyMethodDef methods[] = {
    {"resample_rows", resample_rows, METH_VARARGS, resample_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "feather_core._resample",
    "Vectorised Lanczos-3 resampling of 8-bit rows.", -1, methods,
};

PyMODINIT_FUNC PyInit__resample(void) { return PyModule_Create(&module); }
