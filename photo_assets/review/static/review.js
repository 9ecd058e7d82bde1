// photo_assets review: a little plain JavaScript over server-rendered pages. Every action is one POST /api/edits
// (the same edit `photo-assets people` makes); the page then reloads to show the people with the edit applied.
"use strict";
const token = document.querySelector('meta[name="review-token"]').content;
const statusLine = document.getElementById("status");
const page = document.body.dataset.page;

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "ok";
}

async function edit(fields) {
  const response = await fetch("/api/edits", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Review-Token": token },
    body: JSON.stringify(fields),
  });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    say(body.error || `failed (${response.status})`, true);
    throw new Error(body.error);
  }
  return body;
}

// Edits in order, then a reload (or a move to `url`) that says what was done.
async function run(list, message, url) {
  try {
    let last = null;
    for (const fields of list) last = await edit(fields);
    sessionStorage.setItem("review-status", `${message} — Undo at the top right cancels it.`);
    const next = typeof url === "function" ? url(last) : url;
    if (next) location.assign(next); else location.reload();
    return last;
  } catch (error) {
    return null; // already said
  }
}

const remembered = sessionStorage.getItem("review-status");
if (remembered) { say(remembered, false); sessionStorage.removeItem("review-status"); }

function typing(event) {
  const target = event.target;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

// -- undo, on every page ------------------------------------------------------------------------------------------
async function undo() {
  try {
    const result = await edit({ op: "undo" });
    sessionStorage.setItem("review-status", `Undid the latest ${result.undone_op.replaceAll("_", " ")}`);
    location.reload();
  } catch (error) { /* said */ }
}
document.getElementById("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z" && !typing(event)) { event.preventDefault(); undo(); }
});

// -- names: typing a name renames; a name someone has merges, after asking ---------------------------------------
const knownNames = Array.from(document.querySelectorAll("#names option")).map((o) => o.value);
function holderOf(name) {
  const wanted = name.trim().toLowerCase();
  return knownNames.find((known) => known.trim().toLowerCase() === wanted);
}
document.querySelectorAll("input.rename").forEach((input) => {
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") { input.value = input.dataset.current; input.blur(); return; }
    if (event.key !== "Enter") return;
    event.preventDefault();
    const name = input.value.trim();
    if (name === input.dataset.current.trim()) return;
    if (!name) { say("A name cannot be empty", true); return; }
    const holder = holderOf(name);
    if (holder && !confirm(`${holder} already exists. Merge ${input.placeholder} into ${holder}?`)) {
      input.value = input.dataset.current;
      return;
    }
    const person = input.dataset.person;
    await run([{ op: "rename", person, name }], holder ? `Merged into ${holder}` : `Named ${name}`,
      (result) => (page === "person" && result.person_id !== person ? `/people/${result.person_id}` : null));
  });
});

// -- people: the filter box ---------------------------------------------------------------------------------------
const filter = document.getElementById("filter");
if (filter) {
  filter.addEventListener("input", () => {
    const wanted = filter.value.trim().toLowerCase();
    document.querySelectorAll("#people .card").forEach((card) => {
      card.hidden = wanted !== "" && !card.dataset.filter.includes(wanted);
    });
  });
}

// -- one person: select faces, then act on them -------------------------------------------------------------------
if (page === "person") {
  const person = document.getElementById("person").dataset.person;
  const faces = Array.from(document.querySelectorAll("#faces .face"));
  let anchor = null;
  const selected = () => faces.filter((face) => face.classList.contains("selected"));
  function refresh() {
    const count = selected().length;
    document.getElementById("selected-count").textContent =
      count ? `${count} face${count === 1 ? "" : "s"} selected` : "Nothing selected";
    ["reject", "not-a-face", "approve", "move"].forEach((id) => { document.getElementById(id).disabled = !count; });
  }
  function choose(index, event) {
    if (event.shiftKey && anchor !== null) {
      const [from, to] = anchor < index ? [anchor, index] : [index, anchor];
      faces.forEach((face, i) => face.classList.toggle("selected", i >= from && i <= to));
    } else {
      faces[index].classList.toggle("selected");
      anchor = index;
    }
    faces[index].focus();
    refresh();
  }
  faces.forEach((face, index) => {
    face.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      choose(index, event);
    });
  });
  function columns() {
    const top = faces[0].offsetTop;
    const count = faces.findIndex((face) => face.offsetTop !== top);
    return count === -1 ? faces.length : count;
  }
  const act = {
    reject: () => run(selected().map((f) => ({ op: "reject", face: f.dataset.face })),
      `${selected().length} face(s) taken out of this person`),
    notAFace: () => run(selected().map((f) => ({ op: "not_a_face", face: f.dataset.face })),
      `${selected().length} face(s) marked as not a face`),
    approve: () => run(selected().map((f) => ({ op: "approve", face: f.dataset.face })),
      `${selected().length} face(s) confirmed`),
  };
  document.getElementById("reject").addEventListener("click", act.reject);
  document.getElementById("not-a-face").addEventListener("click", act.notAFace);
  document.getElementById("approve").addEventListener("click", act.approve);
  document.getElementById("move-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const target = document.getElementById("move-target").value.trim();
    if (!target) { say("Type who these faces are", true); return; }
    if (!selected().length) { say("Select faces first", true); return; }
    run(selected().map((f) => ({ op: "move", face: f.dataset.face, target })), `Moved to ${target}`);
  });
  document.getElementById("merge-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const target = document.getElementById("merge-target").value.trim();
    if (!target) { say("Type who this person is", true); return; }
    if (!confirm(`Merge everyone's faces here into ${target}?`)) return;
    run([{ op: "merge", person, target }], `Merged into ${target}`, (result) => `/people/${result.person_id}`);
  });
  document.addEventListener("keydown", (event) => {
    if (typing(event)) return;
    const index = faces.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() }[event.key];
    if (step !== undefined && faces.length) {
      event.preventDefault();
      const next = Math.max(0, Math.min(faces.length - 1, (index === -1 ? 0 : index + step)));
      faces[next].focus();
      if (event.shiftKey) choose(next, { shiftKey: anchor !== null });
      return;
    }
    if ((event.key === " " || event.key === "Enter") && index !== -1) { event.preventDefault(); choose(index, event); }
    else if (event.key === "Escape") { faces.forEach((f) => f.classList.remove("selected")); refresh(); }
    else if (event.key === "a" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault(); faces.forEach((f) => f.classList.add("selected")); refresh();
    }
    else if (!selected().length) return;
    else if (event.key === "r") act.reject();
    else if (event.key === "x") act.notAFace();
    else if (event.key === "a") act.approve();
    else if (event.key === "m") { event.preventDefault(); document.getElementById("move-target").focus(); }
  });
  document.querySelectorAll(".suggestions-here .pair").forEach((pair) => {
    pair.querySelector(".yes").addEventListener("click", () =>
      run([{ op: "merge", person: pair.dataset.other, target: person }], "Merged"));
    pair.querySelector(".no").addEventListener("click", () =>
      run([{ op: "not_same", person, target: pair.dataset.other }], "Noted: two different people"));
  });
  refresh();
}

// -- suggestions: y / n / → through the ranked pairs --------------------------------------------------------------
if (page === "suggestions") {
  const pairs = Array.from(document.querySelectorAll("#pairs .pair"));
  const skipped = new Set(JSON.parse(sessionStorage.getItem("review-skipped") || "[]"));
  const key = (pair) => `${pair.dataset.person}-${pair.dataset.other}`;
  let current = pairs.findIndex((pair) => !skipped.has(key(pair)));
  if (current === -1) current = 0;
  function show(index) {
    if (!pairs.length) return;
    current = (index + pairs.length) % pairs.length;
    pairs.forEach((pair, i) => pair.classList.toggle("current", i === current));
    pairs[current].focus();
    pairs[current].scrollIntoView({ block: "nearest" });
  }
  function decide(answer) {
    const pair = pairs[current];
    if (!pair) return;
    const [a, b] = [pair.dataset.person, pair.dataset.other];
    if (answer === "skip") {
      skipped.add(key(pair));
      sessionStorage.setItem("review-skipped", JSON.stringify([...skipped]));
      show(current + 1);
      return;
    }
    if (answer === "yes") {
      // "Is this Alice?": the unknown person is folded into the named one; else the smaller into the larger (its
      // name, if any, carries over when the other has none).
      const otherFirst = pair.dataset.otherNamed === "1" ||
        (pair.dataset.personNamed !== "1" && Number(pair.dataset.otherFaces) > Number(pair.dataset.personFaces));
      const [source, target] = otherFirst ? [a, b] : [b, a];
      run([{ op: "merge", person: source, target }], "Merged: the same person");
    } else {
      run([{ op: "not_same", person: a, target: b }], "Noted: two different people");
    }
  }
  pairs.forEach((pair, index) => {
    pair.querySelector(".yes").addEventListener("click", () => { show(index); decide("yes"); });
    pair.querySelector(".no").addEventListener("click", () => { show(index); decide("no"); });
    pair.querySelector(".skip").addEventListener("click", () => { show(index); decide("skip"); });
  });
  document.addEventListener("keydown", (event) => {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "y") decide("yes");
    else if (event.key === "n") decide("no");
    else if (event.key === "ArrowRight") { event.preventDefault(); decide("skip"); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); show(current - 1); }
  });
  show(current);
}

// -- one photo, unsorted faces: act on one face -------------------------------------------------------------------
document.querySelectorAll("[data-face]").forEach((item) => {
  const face = item.dataset.face;
  const on = (selector, handler) => {
    const element = item.querySelector(`:scope ${selector}`);
    if (element && element.closest("[data-face]") === item) element.addEventListener("click", handler);
  };
  on("button.approve", () => run([{ op: "approve", face }], "Confirmed"));
  on("button.reject", () => run([{ op: "reject", face }], "Taken out of that person"));
  on("button.not-a-face", () => run([{ op: "not_a_face", face }], "Marked as not a face"));
  const form = item.querySelector(":scope form.assign");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const target = form.querySelector("input").value.trim();
      if (!target) { say("Type who it is", true); return; }
      run([{ op: "move", face, target }], `Assigned to ${target}`);
    });
  }
});
document.querySelectorAll(".photo .box").forEach((box) => {
  const item = document.querySelector(`.boxes li[data-face="${box.dataset.face}"]`);
  if (!item) return;
  const hover = (on) => { box.classList.toggle("hover", on); item.classList.toggle("hover", on); };
  [box, item].forEach((element) => {
    element.addEventListener("mouseenter", () => hover(true));
    element.addEventListener("mouseleave", () => hover(false));
  });
  box.addEventListener("click", () => { item.scrollIntoView({ block: "nearest" }); const i = item.querySelector("input"); if (i) i.focus(); });
});

// -- one photo: draw a face the detector missed ------------------------------------------------------------------
const figure = document.querySelector("figure.photo[data-photo]");
const drawButton = document.getElementById("draw-face");
if (figure && drawButton) {
  const drawn = figure.querySelector(".box.drawing");
  const form = document.getElementById("new-face");
  const size = { width: Number(figure.dataset.width), height: Number(figure.dataset.height) };
  let start = null;
  let box = null; // in the photo's pixels
  const point = (event) => {
    const rect = figure.getBoundingClientRect();
    const x = Math.min(Math.max(event.clientX - rect.left, 0), rect.width) / rect.width;
    const y = Math.min(Math.max(event.clientY - rect.top, 0), rect.height) / rect.height;
    return { x, y };
  };
  const show = (a, b) => {
    const left = Math.min(a.x, b.x), top = Math.min(a.y, b.y);
    const width = Math.abs(a.x - b.x), height = Math.abs(a.y - b.y);
    Object.assign(drawn.style, { left: `${100 * left}%`, top: `${100 * top}%`, width: `${100 * width}%`, height: `${100 * height}%` });
    drawn.hidden = false;
    box = [left * size.width, top * size.height, width * size.width, height * size.height].map(Math.round);
  };
  drawButton.addEventListener("click", () => { figure.classList.add("drawing"); say("Drag a box around the face", false); });
  figure.addEventListener("pointerdown", (event) => {
    if (!figure.classList.contains("drawing")) return;
    event.preventDefault();
    start = point(event);
    figure.setPointerCapture(event.pointerId);
  });
  figure.addEventListener("pointermove", (event) => { if (start) show(start, point(event)); });
  figure.addEventListener("pointerup", (event) => {
    if (!start) return;
    show(start, point(event));
    start = null;
    figure.classList.remove("drawing");
    form.hidden = false;
    form.querySelector("input").focus();
  });
  form.querySelector(".cancel").addEventListener("click", () => { form.hidden = true; drawn.hidden = true; box = null; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!box) { say("Draw the box first", true); return; }
    const name = form.querySelector("input").value.trim();
    run([{ op: "add_face", photo: figure.dataset.photo, box: box.join(","), name }],
        name ? `Face added as ${name}` : "Face added");
  });
}

// -- one photo: an object's box shows while its label is hovered ----------------------------------------------------
document.querySelectorAll(".objects .tag.object").forEach((tag) => {
  const box = document.querySelector(`.object-box[data-object="${tag.dataset.object}"]`);
  if (!box) return;
  tag.addEventListener("mouseenter", () => box.classList.add("shown"));
  tag.addEventListener("mouseleave", () => box.classList.remove("shown"));
});

// Places: the map zooms on the wheel and the buttons, pans by dragging; town dots keep their size on screen.
if (page === "places") {
  const map = document.getElementById("map");
  const dots = Array.from(map.querySelectorAll(".towns circle"));
  const DOT_PIXELS = 9; // radius of the largest town's dot on screen
  const box = (text) => text.split(" ").map(Number);
  let view = box(map.getAttribute("viewBox"));
  // Map units a screen pixel spans (the viewBox is fitted whole, so the larger of the two ratios).
  const unitsPerPixel = (shown) => Math.max(shown[2] / map.clientWidth, shown[3] / map.clientHeight);
  function show(next) {
    view = next;
    map.setAttribute("viewBox", view.join(" "));
    for (const dot of dots) dot.setAttribute("r", DOT_PIXELS * unitsPerPixel(view) * Number(dot.dataset.scale));
  }
  function zoom(factor, centreX = view[0] + view[2] / 2, centreY = view[1] + view[3] / 2) {
    const width = Math.min(360, Math.max(0.5, view[2] * factor));
    const height = view[3] * (width / view[2]);
    show([centreX - (centreX - view[0]) * (width / view[2]), centreY - (centreY - view[1]) * (height / view[3]), width, height]);
  }
  function toMap(event) {
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(map.getScreenCTM().inverse());
    return [point.x, point.y];
  }
  map.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoom(event.deltaY > 0 ? 1.25 : 0.8, ...toMap(event));
  }, { passive: false });
  let drag = null;
  map.addEventListener("pointerdown", (event) => { drag = { x: event.clientX, y: event.clientY, view, moved: false }; });
  map.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) map.setPointerCapture(event.pointerId);
    drag.moved = true;
    map.classList.add("dragging");
    const units = unitsPerPixel(drag.view);
    show([drag.view[0] - dx * units, drag.view[1] - dy * units, drag.view[2], drag.view[3]]);
  });
  map.addEventListener("pointerup", () => { map.classList.remove("dragging"); setTimeout(() => { drag = null; }, 0); });
  map.addEventListener("click", (event) => { if (drag && drag.moved) event.preventDefault(); }, true);
  document.getElementById("zoom-in").addEventListener("click", () => zoom(0.67));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(1.5));
  for (const id of ["zoom-world", "zoom-photos"]) {
    const button = document.getElementById(id);
    button.addEventListener("click", () => show(box(button.dataset.box)));
  }
  show(view);
}
