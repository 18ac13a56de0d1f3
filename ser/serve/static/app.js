// ser predict page: upload or record audio, POST it to /api/predict, draw the answer.
// Recording captures raw samples with the Web Audio API and encodes a 16-bit PCM WAV here, because
// MediaRecorder gives webm/ogg, which the server's audio reader may not decode.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const maxBytes = Number(document.body.dataset.maxBytes);
  const allLabels = JSON.parse(document.body.dataset.labels || "[]");
  const PALETTE = ["#3056d3", "#e0602b", "#2e9d5b", "#c43d7b", "#8a5cd1", "#c99a06", "#1a9bb0", "#6b7385",
    "#a0522d", "#5f8f00"];
  const color = (label) => PALETTE[Math.max(0, allLabels.indexOf(label)) % PALETTE.length];

  function setStatus(text) { $("status").textContent = text || ""; }
  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  let pending = null; // the clip being scored: played back beside its answer
  let playing = null; // object URL of the clip in the player

  async function send(blob, name) {
    showError("");
    if (blob.size > maxBytes) {
      showError(`${name}: ${(blob.size / 1e6).toFixed(1)} MB is over the ${maxBytes / 1e6} MB upload limit`);
      return;
    }
    pending = blob;
    const form = new FormData();
    form.append("file", blob, name);
    setStatus(`scoring ${name} ...`);
    let response, payload;
    try {
      response = await fetch("/api/predict", { method: "POST", body: form });
      payload = await response.json();
    } catch (err) {
      setStatus("");
      showError(`request failed: ${err}`);
      return;
    }
    setStatus("");
    if (!response.ok) {
      showError(payload.error || `error ${response.status}`);
      return;
    }
    render(payload);
  }

  // ------------------------------------------------------------------------------------------- results
  function render(r) {
    $("result").hidden = false;
    $("filename").textContent = r.filename;
    $("label").textContent = r.label;
    $("label").style.color = color(r.label);
    $("summary").textContent =
      `${r.duration.toFixed(2)} s · ${r.windows.length} window${r.windows.length === 1 ? "" : "s"}`;
    const bars = $("bars");
    bars.replaceChildren();
    const ranked = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [label, p] of ranked) {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label;
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("div");
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      fill.style.background = color(label);
      bar.appendChild(fill);
      const val = document.createElement("span");
      val.className = "val";
      val.textContent = p.toFixed(2);
      bars.append(name, bar, val);
    }
    const notes = $("notes");
    notes.replaceChildren();
    for (const note of r.notes || []) {
      const li = document.createElement("li");
      li.textContent = note;
      notes.appendChild(li);
    }
    const labels = Object.keys(r.probabilities);
    $("legend").replaceChildren(...labels.map((label) => {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = color(label);
      span.append(swatch, label);
      return span;
    }));
    $("timeline").replaceChildren(timeline(r.windows, labels, r.duration));
    player(pending);
    spectrogram(r.spectrogram, r.duration);
    strip(r.windows, r.duration);
  }

  // ------------------------------------------------------------------------- player and spectrogram
  function player(blob) {
    const audio = $("player");
    if (playing) URL.revokeObjectURL(playing);
    playing = blob ? URL.createObjectURL(blob) : null;
    audio.hidden = !playing;
    if (playing) audio.src = playing;
  }

  // 256-entry "magma"-like colour map from a few anchors (dark = quiet, bright = loud).
  const ANCHORS = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
    [250, 193, 39], [252, 255, 164]];
  const LUT = Array.from({ length: 256 }, (_, i) => {
    const t = (i / 255) * (ANCHORS.length - 1), k = Math.min(Math.floor(t), ANCHORS.length - 2), f = t - k;
    return ANCHORS[k].map((a, c) => Math.round(a + f * (ANCHORS[k + 1][c] - a)));
  });

  function spectrogram(spec, duration) {
    const canvas = $("spectrogram");
    $("spectro").hidden = !spec;
    if (!spec) return;
    const bytes = Uint8Array.from(atob(spec.data), (ch) => ch.charCodeAt(0));
    const { n_mels: rows, frames } = spec;
    canvas.width = frames;
    canvas.height = rows;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(frames, rows);
    for (let band = 0; band < rows; band++) {
      const y = rows - 1 - band; // row 0 of the data is the lowest band: draw it at the bottom
      for (let f = 0; f < frames; f++) {
        const [r, g, b] = LUT[bytes[band * frames + f]];
        const at = 4 * (y * frames + f);
        image.data[at] = r; image.data[at + 1] = g; image.data[at + 2] = b; image.data[at + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    $("fmax").textContent = `${+(spec.fmax / 1000).toFixed(1)} kHz`;
    $("spectro-caption").textContent = `log-mel spectrogram: ${rows} mel bands, 0–${+(spec.fmax / 1000).toFixed(1)} kHz, ` +
      `${spec.db[1] - spec.db[0]} dB range, ${Math.round(spec.seconds_per_frame * 1000)} ms per column; click to play from there`;
    const step = niceStep(duration / 8);
    const ticks = [];
    for (let t = 0; t <= duration + 1e-9; t += step) {
      const tick = document.createElement("span");
      tick.style.left = `${(100 * t) / duration}%`;
      tick.textContent = `${+t.toFixed(2)} s`;
      if (t > duration - step / 2) tick.className = "end"; // the last label ends at the right edge
      ticks.push(tick);
    }
    $("time-axis").replaceChildren(...ticks);
  }

  // The top label of each window as a strip over the spectrogram, only when there is more than one window.
  function strip(windows, duration) {
    const node = $("strip");
    if (windows.length < 2) { node.replaceChildren(); return; }
    const centre = (w) => (w.start + w.end) / 2;
    node.replaceChildren(...windows.map((w, i) => {
      const from = i === 0 ? 0 : (centre(windows[i - 1]) + centre(w)) / 2;
      const to = i === windows.length - 1 ? duration : (centre(w) + centre(windows[i + 1])) / 2;
      const seg = document.createElement("span");
      seg.style.left = `${(100 * from) / duration}%`;
      seg.style.width = `calc(${(100 * (to - from)) / duration}% - 1px)`;
      seg.style.background = color(w.label);
      seg.dataset.label = w.label;
      seg.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s: ${w.label} ${w.probabilities[w.label].toFixed(2)}`;
      if ((to - from) / duration > 0.07) seg.textContent = w.label;
      return seg;
    }));
  }

  const audio = $("player");
  audio.addEventListener("timeupdate", () => {
    const head = $("playhead");
    head.hidden = !audio.duration;
    if (audio.duration) head.style.left = `${(100 * audio.currentTime) / audio.duration}%`;
  });
  $("spectrogram").addEventListener("click", (e) => {
    if (!audio.duration) return;
    const box = e.currentTarget.getBoundingClientRect();
    audio.currentTime = ((e.clientX - box.left) / box.width) * audio.duration;
    audio.play().catch(() => {});
  });

  const SVG = "http://www.w3.org/2000/svg";
  function el(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Per-window probabilities as lines (x: window centre in seconds, y: probability), with a strip on top
  // coloured by each window's winning label.
  function timeline(windows, labels, duration) {
    const W = 1000, H = 300, L = 52, R = 16, T = 30, B = 34;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "probabilities over time" });
    const end = Math.max(duration, ...windows.map((w) => w.end), 1e-3);
    const x = (t) => L + (W - L - R) * (t / end);
    const y = (p) => T + (H - T - B) * (1 - p);
    for (const p of [0, 0.25, 0.5, 0.75, 1]) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), stroke: "#e2e5eb" }));
      svg.appendChild(el("text", { x: L - 8, y: y(p) + 4, "text-anchor": "end" }, p.toFixed(2)));
    }
    const step = niceStep(end / 8);
    for (let t = 0; t <= end + 1e-9; t += step) {
      svg.appendChild(el("line", { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 5, stroke: "#9aa1b0" }));
      svg.appendChild(el("text", { x: x(t), y: H - B + 18, "text-anchor": "middle" }, `${+t.toFixed(2)} s`));
    }
    // Winning label per window on a strip: each window owns the span between its neighbours' centres.
    const centre = (w) => (w.start + w.end) / 2;
    svg.appendChild(el("text", { x: L - 8, y: 13, "text-anchor": "end" }, "top"));
    windows.forEach((w, i) => {
      const from = i === 0 ? w.start : (centre(windows[i - 1]) + centre(w)) / 2;
      const to = i === windows.length - 1 ? w.end : (centre(w) + centre(windows[i + 1])) / 2;
      const seg = el("rect", { x: x(from), y: 2, width: Math.max(1, x(to) - x(from) - 1), height: 14,
        fill: color(w.label), rx: 2 });
      seg.appendChild(el("title", {}, `${w.start.toFixed(2)}–${w.end.toFixed(2)} s: ${w.label}`));
      svg.appendChild(seg);
    });
    for (const label of labels) {
      const pts = windows.map((w) => `${x(centre(w)).toFixed(1)},${y(w.probabilities[label]).toFixed(1)}`);
      if (windows.length > 1) {
        svg.appendChild(el("polyline", { points: pts.join(" "), fill: "none", stroke: color(label),
          "stroke-width": 2.2, "stroke-linejoin": "round" }));
      }
      for (const w of windows) {
        const dot = el("circle", { cx: x(centre(w)), cy: y(w.probabilities[label]), r: windows.length > 60 ? 1.5 : 3.2,
          fill: color(label) });
        dot.appendChild(el("title", {}, `${label} ${w.start.toFixed(2)}–${w.end.toFixed(2)} s: ` +
          w.probabilities[label].toFixed(3)));
        svg.appendChild(dot);
      }
    }
    return svg;
  }

  function niceStep(raw) {
    const base = 10 ** Math.floor(Math.log10(raw || 1));
    for (const m of [1, 2, 5, 10]) if (m * base >= raw) return m * base;
    return 10 * base;
  }

  // --------------------------------------------------------------------------------------------- upload
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) send(file, file.name);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) send(file, file.name);
  });

  // ------------------------------------------------------------------------------------------ recording
  let rec = null;
  $("record").addEventListener("click", () => (rec ? stopRecording() : startRecording()));

  async function startRecording() {
    showError("");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError("recording needs a secure page (https or http://localhost / 127.0.0.1) and a browser with a microphone API");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false } });
    } catch (err) {
      showError(`microphone unavailable: ${err.message || err}`);
      return;
    }
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    const processor = context.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    processor.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(processor);
    processor.connect(context.destination); // a ScriptProcessor only runs when connected to the output
    const began = performance.now();
    const timer = setInterval(() => {
      $("rec-status").textContent = `recording ${((performance.now() - began) / 1000).toFixed(1)} s ... click to stop`;
    }, 100);
    rec = { stream, context, source, processor, chunks, timer };
    $("record").textContent = "■ Stop";
    $("record").classList.add("recording");
  }

  async function stopRecording() {
    const { stream, context, source, processor, chunks, timer } = rec;
    rec = null;
    clearInterval(timer);
    source.disconnect();
    processor.disconnect();
    stream.getTracks().forEach((t) => t.stop());
    const rate = context.sampleRate;
    await context.close();
    $("record").textContent = "● Record";
    $("record").classList.remove("recording");
    const samples = concat(chunks);
    $("rec-status").textContent = `recorded ${(samples.length / rate).toFixed(1)} s at ${rate} Hz`;
    if (!samples.length) {
      showError("the recording is empty");
      return;
    }
    send(encodeWav(samples, rate), "recording.wav");
  }

  function concat(chunks) {
    const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const c of chunks) { out.set(c, offset); offset += c.length; }
    return out;
  }

  // Mono 16-bit PCM WAV: a 44-byte RIFF header, then little-endian samples.
  function encodeWav(samples, rate) {
    const buffer = new ArrayBuffer(44 + samples.length * 2);
    const v = new DataView(buffer);
    const text = (offset, s) => { for (let i = 0; i < s.length; i++) v.setUint8(offset + i, s.charCodeAt(i)); };
    text(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
    text(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
    v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
    text(36, "data"); v.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buffer], { type: "audio/wav" });
  }
})();
