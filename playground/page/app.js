// The playground page: it sends the case to the server after every edit
// (debounced) and shows the answer. Nothing is evaluated here.
"use strict";

const editorNames = ["policies", "object", "oldObject", "params"];
const $ = (id) => document.getElementById(id);
// The editors, by name; the namespace labels are a plain input.
const editors = {};
for (const name of editorNames) {
  editors[name] = window.PlaygroundEditor.create($(name), { label: $(name + "-label").textContent, onChange: scheduleEvaluation });
}
const valueOf = (name) => (editors[name] ? editors[name].value : $(name).value);
const fields = [...editorNames, "namespaceLabels"];
let pending = null;
let sequence = 0;

// The case on screen, as the server reads it.
function currentCase() {
  const labels = {};
  for (const pair of $("namespaceLabels").value.split(",")) {
    const [key, ...value] = pair.split("=");
    if (key.trim() !== "") labels[key.trim()] = value.join("=").trim();
  }
  return {
    policies: valueOf("policies"),
    builtins: $("builtins").checked,
    operation: $("operation").value,
    object: valueOf("object"),
    oldObject: valueOf("oldObject"),
    params: valueOf("params"),
    namespaceLabels: labels,
  };
}

// The address holds the case as base64url JSON, so it can be shared.
function saveToAddress() {
  const state = {};
  for (const f of fields) state[f] = valueOf(f);
  state.builtins = $("builtins").checked;
  state.operation = $("operation").value;
  const bytes = new TextEncoder().encode(JSON.stringify(state));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const encoded = btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  history.replaceState(null, "", "#case=" + encoded);
}

function loadFromAddress() {
  const match = location.hash.match(/^#case=([A-Za-z0-9_-]+)$/);
  if (!match) return false;
  try {
    const binary = atob(match[1].replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const state = JSON.parse(new TextDecoder().decode(bytes));
    for (const f of editorNames) editors[f].value = state[f] || "";
    $("namespaceLabels").value = state.namespaceLabels || "";
    $("builtins").checked = !!state.builtins;
    $("operation").value = state.operation || "CREATE";
    return true;
  } catch (e) {
    $("status").textContent = "The address holds no readable case (" + e.message + "); starting empty.";
    return false;
  }
}

function scheduleEvaluation() {
  saveToAddress();
  clearTimeout(pending);
  pending = setTimeout(evaluate, 300);
}

async function evaluate() {
  const mine = ++sequence;
  $("status").textContent = "Evaluating…";
  let answer;
  try {
    const response = await fetch("api/evaluate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(currentCase()) });
    answer = await response.json();
  } catch (e) {
    answer = { error: "the playground server did not answer: " + e.message + " (is doris-admission playground still running?)" };
  }
  if (mine !== sequence) return; // a newer edit is on its way
  if (answer.error) {
    $("status").textContent = "Error: " + answer.error;
    return;
  }
  show(answer);
}

function show(res) {
  const denied = res.denials.length > 0;
  $("status").textContent = (res.allowed ? "Allowed" : "Denied") + ": " + res.problems.length + " problems, " + res.denials.length + " denials, " + res.warnings.length + " warnings, " + res.audited.length + " audit failures.";
  const decision = $("decision");
  decision.replaceChildren();
  const verdict = document.createElement("p");
  verdict.className = res.allowed ? "allowed" : "denied";
  verdict.textContent = res.allowed ? "✔ Allowed" : "✖ Denied";
  decision.append(verdict);
  if (res.applied.length) decision.append(paragraph("Changed by: " + res.applied.join(", ")));
  decision.append(list("Denial", res.denials, "denied"), list("Warning", res.warnings, "warned"), list("Audit (to the audit log)", res.audited, "audited"));
  if (!denied && !res.warnings.length && !res.audited.length) decision.append(paragraph("No validation failed."));
  $("diff").textContent = res.diff || "(no policy changed the object)";
  $("patch").textContent = res.patch || "(none)";
  $("mutated").textContent = res.mutated || "(unchanged)";
  const costs = $("costs").querySelector("tbody");
  costs.replaceChildren(...res.costs.map((c) => row([c.policy, c.field, String(c.line), (c.over ? "⚠ over the limit: " : "") + c.cost, c.limit], c.over)));
  $("export").textContent = res.export || "(nothing exported)";
  $("not-exported").replaceChildren(...res.notExported.map((n) => item(n)));
  for (const editor of editorNames) {
    const found = res.problems.filter((p) => p.editor === editor);
    $(editor).classList.toggle("invalid", found.some((p) => p.severity === "error"));
    editors[editor].setProblems(found);
    $(editor + "-problems").replaceChildren(...found.map((p) => problemItem(editor, p)));
  }
}

// A problem, as text with its place; a click (or Enter) puts the cursor there.
function problemItem(editor, p) {
  const li = document.createElement("li");
  li.className = p.severity;
  const place = p.line ? "line " + p.line + (p.column ? ", column " + p.column : "") : "";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "goto";
  button.textContent = (p.severity === "error" ? "✖ error" : "⚠ " + p.severity) + (place ? " at " + place : "");
  button.addEventListener("click", () => editors[editor].focusAt(p.line, p.column));
  li.append(button, document.createTextNode(": " + [p.policy, p.field, p.message].filter(Boolean).join(": ")));
  return li;
}

function paragraph(text) {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}

function item(text, className) {
  const li = document.createElement("li");
  li.textContent = text;
  if (className) li.className = className;
  return li;
}

function list(label, texts, className) {
  const ul = document.createElement("ul");
  ul.append(...texts.map((t) => item(label + ": " + t, className)));
  return ul;
}

function row(cells, over) {
  const tr = document.createElement("tr");
  if (over) tr.className = "over";
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

async function loadBuiltins() {
  const response = await fetch("api/builtins");
  const answer = await response.json();
  const editor = editors.policies;
  editor.value = answer.policies + (editor.value.trim() ? "---\n" + editor.value : "");
}

async function save(event) {
  event.preventDefault();
  $("saved").textContent = "Saving…";
  const response = await fetch("api/save", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: $("suite-name").value, case: currentCase() }) });
  const answer = await response.json();
  $("saved").textContent = answer.error ? "Not saved: " + answer.error : "Saved to " + answer.folder + ". Run: " + answer.command;
}

async function copyLink() {
  saveToAddress();
  try {
    await navigator.clipboard.writeText(location.href);
    $("saved").textContent = "The link to this case is on the clipboard.";
  } catch (e) {
    $("saved").textContent = "Copy this address: " + location.href;
  }
}

$("namespaceLabels").addEventListener("input", scheduleEvaluation);
$("builtins").addEventListener("change", scheduleEvaluation);
$("operation").addEventListener("change", scheduleEvaluation);
$("load-builtins").addEventListener("click", loadBuiltins);
$("save-form").addEventListener("submit", save);
$("copy-link").addEventListener("click", copyLink);
if (loadFromAddress()) evaluate();
