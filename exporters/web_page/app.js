// vtk's exported page: classifies an image dropped on it (or drawn, for 1-channel data) with onnxruntime-web.
// Everything it loads lies beside it (model.onnx, metadata.json, ort/): no network once served.
// Preprocessing follows metadata.json exactly as vtk's Preprocess does: pixels / 255, zero-padded to the
// model size, (x - mean) / std, each step rounded to float32 as PyTorch computes it.
// `window.vtk` is the programmatic side vtk drives in headless Chromium: it scores the test split and
// times calls here, with this page's own code and clock. ?backend=webgpu loads ONNX Runtime's WebGPU build
// instead (vtk serves it from its own copy for a correctness check; the exported folder ships WASM only).

const params = new URLSearchParams(location.search);
const backend = params.get('backend') || 'wasm';
const f32 = Math.fround;

async function start() {
  const ort = await import(backend === 'webgpu' ? './ort/ort.webgpu.min.mjs' : './ort/ort.wasm.min.mjs');
  const meta = await (await fetch('metadata.json')).json();
  const spec = JSON.parse(meta.vtk).preprocess;
  const classes = JSON.parse(meta.classes);
  const [C, H, W] = spec.image_shape, [MC, MH, MW] = spec.model_shape;
  const top = (MH - H) / 2, left = (MW - W) / 2;
  const mean = spec.mean.map(f32), std = spec.std.map(f32);
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  if (params.has('threads')) ort.env.wasm.numThreads = Number(params.get('threads'));
  const session = await ort.InferenceSession.create('model.onnx',
    {executionProviders: [backend], graphOptimizationLevel: 'all'});
  const [input, output] = [session.inputNames[0], session.outputNames[0]];
  const per = MC * MH * MW;

  // raw uint8 (n, C, H, W) -> float32 (n, MC, MH, MW); padding is raw 0, so it normalises to -mean / std
  function preprocess(raw, n) {
    const x = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < C; c++) {
        const pad = f32(f32(0 - mean[c]) / std[c]), base = i * per + c * MH * MW;
        x.fill(pad, base, base + MH * MW);
        for (let h = 0; h < H; h++) {
          for (let w = 0; w < W; w++) {
            const p = raw[((i * C + c) * H + h) * W + w];
            x[base + (h + top) * MW + w + left] = f32(f32(f32(p / 255) - mean[c]) / std[c]);
          }
        }
      }
    }
    return x;
  }

  async function logitsOf(x, n) {
    const out = await session.run({[input]: new ort.Tensor('float32', x, [n, MC, MH, MW])});
    return out[output].data;
  }

  // logits of n images fetched from url (raw uint8 pixels, or model-ready float32), `batch` at a time
  async function logitsAll(url, n, batch, kind) {
    const buf = await (await fetch(url)).arrayBuffer();
    const all = new Float32Array(n * classes.length);
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i);
      const x = kind === 'raw' ? preprocess(new Uint8Array(buf, i * C * H * W, m * C * H * W), m)
                               : new Float32Array(buf, i * per * 4, m * per);
      all.set(await logitsOf(x, m), i * classes.length);
    }
    return all;
  }

  const argmax = (v, i, k) => { let b = 0; for (let j = 1; j < k; j++) if (v[i * k + j] > v[i * k + b]) b = j; return b; };

  function base64(floats) {
    const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }

  window.vtk = {
    info: async () => {
      const adapter = backend === 'webgpu' ? await navigator.gpu.requestAdapter() : null;
      return {crossOriginIsolated: self.crossOriginIsolated, threads: ort.env.wasm.numThreads,
              ort: ort.env.versions.web, backend, cores: navigator.hardwareConcurrency,
              adapter: adapter && {vendor: adapter.info.vendor, architecture: adapter.info.architecture,
                                   fallback: Boolean(adapter.info.isFallbackAdapter)}};
    },
    logits: async (url, n, batch, kind) => base64(await logitsAll(url, n, batch, kind)),
    // top-1 class of every image, decided here: the accuracy column is the page's own
    predict: async (url, n, batch, kind) => {
      const all = await logitsAll(url, n, batch, kind), k = classes.length;
      return Array.from({length: n}, (_, i) => argmax(all, i, k));
    },
    // per-call ms of session.run on one batch already in place: warm-up, then >= minIters calls and >= minS
    time: async (url, n, warmupS, minIters, minS) => {
      const x = new Float32Array(await (await fetch(url)).arrayBuffer());
      const feed = {[input]: new ort.Tensor('float32', x, [n, MC, MH, MW])};
      const warm = performance.now() + warmupS * 1000;
      do { await session.run(feed); } while (performance.now() < warm);
      const samples = [], start = performance.now();
      while (samples.length < minIters || performance.now() - start < minS * 1000) {
        const t0 = performance.now();
        await session.run(feed);
        samples.push(performance.now() - t0);
      }
      return samples;
    },
    classify: async (raw) => classify(raw),
  };

  // ---- the page a person uses ----
  const $ = (id) => document.getElementById(id);
  $('title').textContent = `${meta.model} on ${meta.dataset || 'its data'} (${meta.precision})`;
  $('status').textContent = `onnxruntime-web ${ort.env.versions.web} · ${backend} · ` +
    `${ort.env.wasm.numThreads} thread(s) · cross-origin isolated: ${self.crossOriginIsolated}`;
  const preview = $('preview'), pctx = preview.getContext('2d', {willReadFrequently: true});
  preview.width = W; preview.height = H;

  async function classify(raw) {
    const k = classes.length, logits = await logitsOf(preprocess(raw, 1), 1);
    const peak = Math.max(...logits), e = Array.from(logits, (v) => Math.exp(v - peak));
    const sum = e.reduce((a, b) => a + b, 0);
    const ranked = e.map((v, i) => ({label: classes[i], index: i, p: v / sum})).sort((a, b) => b.p - a.p);
    $('results').replaceChildren(...ranked.slice(0, Math.min(5, k)).map((r) => {
      const li = document.createElement('li');
      li.innerHTML = `<span class="label"></span><span class="bar"><i style="width:${(r.p * 100).toFixed(1)}%">` +
        `</i></span><span class="p">${(r.p * 100).toFixed(1)}%</span>`;
      li.querySelector('.label').textContent = r.label;
      return li;
    }));
    return ranked.slice(0, 5).map((r) => [r.label, r.p]);
  }

  // any picture -> C x H x W uint8: centre-cropped to a square, scaled to the data's size
  function pixels(source, sw, sh) {
    const side = Math.min(sw, sh);
    pctx.fillStyle = 'black';
    pctx.fillRect(0, 0, W, H);
    pctx.drawImage(source, (sw - side) / 2, (sh - side) / 2, side, side, 0, 0, W, H);
    const rgba = pctx.getImageData(0, 0, W, H).data, raw = new Uint8Array(C * H * W);
    const invert = C === 1 && $('invert').checked;
    for (let i = 0; i < H * W; i++) {
      if (C === 1) {
        const g = Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]);
        raw[i] = invert ? 255 - g : g;
      } else {
        for (let c = 0; c < 3; c++) raw[c * H * W + i] = rgba[4 * i + c];
      }
    }
    return raw;
  }

  async function classifyFile(file) {
    const bitmap = await createImageBitmap(file);
    return classify(pixels(bitmap, bitmap.width, bitmap.height));
  }
  window.vtk.classifyFile = classifyFile;

  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) window.vtk.dropped = classifyFile(file);
  });
  $('file').addEventListener('change', (e) => e.target.files[0] && classifyFile(e.target.files[0]));

  if (C === 1) {  // a canvas to draw on: white ink on black, as the digit and sketch data sets are
    const pad = $('pad'), ctx = pad.getContext('2d');
    $('drawing').hidden = false;
    $('invert').parentElement.hidden = false;
    const clear = () => { ctx.fillStyle = 'black'; ctx.fillRect(0, 0, pad.width, pad.height); };
    clear();
    let down = false;
    const at = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    pad.addEventListener('pointerdown', (e) => { down = true; ctx.beginPath(); ctx.moveTo(...at(e)); });
    pad.addEventListener('pointermove', (e) => {
      if (!down) return;
      Object.assign(ctx, {strokeStyle: 'white', lineWidth: pad.width / 12, lineCap: 'round', lineJoin: 'round'});
      ctx.lineTo(...at(e));
      ctx.stroke();
    });
    pad.addEventListener('pointerup', () => { down = false; $('invert').checked = false;
                                             classify(pixels(pad, pad.width, pad.height)); });
    $('clear').addEventListener('click', clear);
  }
  window.vtkReady = true;
}

start().catch((e) => {
  window.vtkError = String(e && e.message || e);
  document.getElementById('status').textContent = `Could not start: ${window.vtkError}`;
});
