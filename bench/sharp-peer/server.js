// The bench's peer: Feather's POST /api/compress for the bench jobs, built on sharp (libvips).
//
// Same fields (outputFormat, quality, maxWidth, maxHeight, effort, targetMB, progressive) and the
// same settings as Feather: 4:2:0, optimised Huffman tables for JPEG, Lanczos 3, never enlarging,
// EXIF orientation applied, metadata stripped. `node server.js PORT WORKERS` starts WORKERS
// processes (node cluster, like gunicorn's workers), each with libvips on one thread so CPU time
// compares with one Python worker.
'use strict';

const cluster = require('node:cluster');
const http = require('node:http');
const sharp = require('sharp');

const PORT = Number(process.argv[2] || process.env.PORT || 3100);
const WORKERS = Number(process.argv[3] || process.env.WORKERS || 2);
const MIME = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif' };

sharp.concurrency(1);
sharp.cache(false);

function encoder(pipeline, format, quality, effort, progressive) {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality, chromaSubsampling: '4:2:0', optimiseCoding: true, progressive });
    case 'webp':
      return pipeline.webp({ quality, effort: Math.min(effort, 6) });
    case 'avif':
      // sharp's AVIF speed is 9 - effort, Feather's 10 - effort: one less here gives both
      // the same libaom speed for the same effort field.
      return pipeline.avif({ quality, effort: Math.max(0, effort - 1), chromaSubsampling: '4:2:0' });
    case 'png':
      return pipeline.png({ compressionLevel: 9, effort: Math.max(1, effort + 1) });
    default:
      throw Object.assign(new Error(`outputFormat ${format} is not supported here`), { status: 400 });
  }
}

async function compress(input, fields) {
  const meta = await sharp(input).metadata();
  const format = !fields.outputFormat || fields.outputFormat === 'auto'
    ? (['jpeg', 'png', 'webp', 'avif'].includes(meta.format) ? meta.format : 'webp')
    : fields.outputFormat;
  const quality = Number(fields.quality || 80);
  const effort = fields.effort === undefined ? 4 : Number(fields.effort);
  const progressive = ['true', '1', 'on'].includes(String(fields.progressive || 'false'));
  let pipeline = sharp(input).rotate();
  if (fields.maxWidth || fields.maxHeight) {
    pipeline = pipeline.resize({
      width: fields.maxWidth ? Number(fields.maxWidth) : undefined,
      height: fields.maxHeight ? Number(fields.maxHeight) : undefined,
      fit: 'inside', withoutEnlargement: true, kernel: 'lanczos3',
    });
  }
  if (!fields.targetMB) {
    const { data, info } = await encoder(pipeline, format, quality, effort, progressive)
      .toBuffer({ resolveWithObject: true });
    return { data, info, format, quality, iterations: 1, met: null };
  }
  // targetMB: decode once to raw pixels, then a plain quality binary search (10..95) on encodes.
  const target = Math.round(Number(fields.targetMB) * 1e6);
  const raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
  const from = () => sharp(raw.data, { raw: raw.info });
  let lo = 10, hi = 95, best = null, smallest = null, iterations = 0;
  while (lo <= hi) {
    const q = Math.floor((lo + hi) / 2);
    const out = await encoder(from(), format, q, effort, progressive).toBuffer({ resolveWithObject: true });
    iterations += 1;
    if (!smallest || out.data.length < smallest.out.data.length) smallest = { out, q };
    if (out.data.length <= target) { best = { out, q }; lo = q + 1; } else { hi = q - 1; }
  }
  const pick = best || smallest;
  return { data: pick.out.data, info: pick.out.info, format, quality: pick.q, iterations, met: !!best };
}

function formFields(req, body) {
  // Node's fetch Request parses multipart/form-data: no dependency beyond sharp.
  const request = new Request('http://peer' + req.url, { method: 'POST', headers: req.headers, body });
  return request.formData();
}

async function handle(req, res) {
  const started = process.hrtime.bigint();
  if (req.method === 'GET' && req.url === '/api/health') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ status: 'ok', sharp: sharp.versions }));
  }
  const path = req.url.split('?')[0];
  if (req.method === 'POST' && path === '/api/batch') return handleBatch(req, res);
  if (req.method !== 'POST' || path !== '/api/compress') {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'Not found' } }));
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const form = await formFields(req, Buffer.concat(chunks));
  const file = form.get('image') || form.get('file');
  if (!file || typeof file === 'string') {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ error: { code: 'INVALID_INPUT', message: 'image is required' } }));
  }
  const fields = {};
  for (const [key, value] of form.entries()) if (typeof value === 'string') fields[key] = value;
  const input = Buffer.from(await file.arrayBuffer());
  const out = await compress(input, fields);
  const headers = {
    'Content-Type': MIME[out.format],
    'X-Original-Bytes': String(input.length),
    'X-Output-Bytes': String(out.data.length),
    'X-Output-Width': String(out.info.width),
    'X-Output-Height': String(out.info.height),
    'X-Output-Quality': String(out.quality),
    'X-Iterations': String(out.iterations),
    'X-Processing-Time-Ms': String(Number((process.hrtime.bigint() - started) / 1000000n)),
  };
  if (out.met !== null) headers['X-Target-Met'] = String(out.met);
  res.writeHead(200, headers);
  res.end(out.data);
}

// POST /api/batch: several `file` parts in one request, processed concurrently (libuv's
// thread pool runs the sharp pipelines side by side), answered with their sizes as JSON.
async function handleBatch(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const form = await formFields(req, Buffer.concat(chunks));
  const fields = {};
  for (const [key, value] of form.entries()) if (typeof value === 'string') fields[key] = value;
  if (fields.format && !fields.outputFormat) {
    fields.outputFormat = fields.format === 'jpg' ? 'jpeg' : fields.format;
  }
  const files = form.getAll('file').filter((f) => typeof f !== 'string');
  const outs = await Promise.all(files.map(async (file) => {
    const input = Buffer.from(await file.arrayBuffer());
    const out = await compress(input, fields);
    return { originalName: file.name, originalSize: input.length, optimizedSize: out.data.length,
             width: out.info.width, height: out.info.height };
  }));
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ data: outs }));
}

if (cluster.isPrimary && WORKERS > 1) {
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  cluster.on('exit', (worker, code) => { if (code) process.exitCode = code; });
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      res.writeHead(err.status || 500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'PROCESSING_FAILED', message: String(err.message) } }));
    });
  }).listen(PORT, '127.0.0.1');
}
