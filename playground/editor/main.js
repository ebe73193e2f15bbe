// The playground's editor: CodeMirror with YAML highlighting, line numbers
// and the server's problems as markers (underline, gutter sign and a text
// message on hover and in the lint panel). build.sh bundles it into
// ../page/editor.js; app.js uses it through window.PlaygroundEditor.
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { syntaxHighlighting, defaultHighlightStyle, indentOnInput, bracketMatching } from "@codemirror/language";
import { yaml } from "@codemirror/lang-yaml";
import { setDiagnostics, lintGutter, lintKeymap } from "@codemirror/lint";

// create puts an editor in parent. label names it for screen readers;
// onChange runs after every edit.
function create(parent, { label, doc = "", onChange = () => {} }) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        highlightActiveLine(),
        indentOnInput(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        yaml(),
        lintGutter(),
        // Tab is left to the browser, so the keyboard can leave the editor.
        keymap.of([...defaultKeymap, ...historyKeymap, ...lintKeymap]),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange();
        }),
      ],
    }),
  });
  // offset is the document position of a 1-based line and column, clamped.
  const offset = (line, column) => {
    const doc = view.state.doc;
    const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
    return Math.min(l.from + Math.max((column || 1) - 1, 0), l.to);
  };
  return {
    view,
    get value() {
      return view.state.doc.toString();
    },
    set value(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    // setProblems marks each problem ({line, column, severity, message})
    // from its column to the end of the word there, or the whole line when
    // the column is not known.
    setProblems(problems) {
      const doc = view.state.doc;
      const diagnostics = problems.filter((p) => p.line > 0).map((p) => {
        const from = offset(p.line, p.column);
        const lineEnd = doc.lineAt(from).to;
        const word = /^[\w.$-]+/.exec(doc.sliceString(from, lineEnd));
        const to = p.column ? Math.min(from + Math.max(word ? word[0].length : 1, 1), lineEnd) : lineEnd;
        return { from, to: Math.max(to, from), severity: p.severity === "error" ? "error" : "warning", message: p.message };
      });
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
    // focusAt puts the cursor at a 1-based line and column.
    focusAt(line, column) {
      const at = offset(line, column);
      view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
      view.focus();
    },
  };
}

window.PlaygroundEditor = { create };
