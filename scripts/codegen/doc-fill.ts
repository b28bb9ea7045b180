// Doc comments for generated declarations their source leaves undescribed (a .proto message or field
// without a comment, a JSON schema without a description), so every public symbol of the API reference
// says at least what it is and where it comes from. Declarations that already carry a doc comment are
// left as the generator wrote them.
import ts from "typescript";

/** What a filled-in comment names as the source, e.g. "the CRI `runtime.v1` proto". */
export interface DocSource {
  /** The source the sentence names: "the `runtime.v1` .proto" or "the OCI runtime-spec schema". */
  what: string;
  /** How a top-level type is described: "message" for protos, "schema type" for JSON schemas. */
  typeNoun: string;
}

const hasDoc = (text: string, node: ts.Node): boolean =>
  (ts.getLeadingCommentRanges(text, node.pos) ?? []).some((r) => text.startsWith("/**", r.pos));

const isExported = (node: ts.Node): boolean =>
  ts.canHaveModifiers(node) &&
  (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

/** The dotted path of named declarations and properties around a node: `Spec.linux.resources`. */
function pathOf(node: ts.Node, sf: ts.SourceFile): string {
  const parts: string[] = [];
  for (let n: ts.Node | undefined = node; n; n = n.parent) {
    if (
      (ts.isInterfaceDeclaration(n) ||
        ts.isTypeAliasDeclaration(n) ||
        ts.isEnumDeclaration(n) ||
        ts.isPropertySignature(n)) &&
      n.name
    ) {
      parts.unshift(n.name.getText(sf).replace(/^["']|["']$/g, ""));
    }
  }
  return parts.join(".");
}

/** What each field of a ts-proto generic service definition holds. */
const definitionFields: Record<string, string> = {
  name: "The service's name, without its package.",
  fullName: "The service's full name as sent on the wire (`package.Service`).",
  methods: "The service's rpcs, by the camel-case name the client calls them by.",
  requestType: "The codec of the rpc's request message.",
  requestStream: "Whether the client sends a stream of requests.",
  responseType: "The codec of the rpc's response message.",
  responseStream: "Whether the server answers with a stream of responses.",
  options: "The rpc's options from the .proto.",
};

/** The exported `const ...Definition` a node belongs to, if any. */
function definitionOf(node: ts.Node): string | undefined {
  for (let n: ts.Node | undefined = node; n; n = n.parent) {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text.endsWith("Definition")) {
      return n.name.text;
    }
  }
  return undefined;
}

/** Adds a doc comment to each exported declaration, enum member and interface property without one. */
export function fillDocs(fileName: string, text: string, source: DocSource): string {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const inserts: Array<{ at: number; comment: string }> = [];
  const add = (node: ts.Node, sentence: string) => {
    if (hasDoc(text, node)) return;
    const at = node.getStart(sf);
    const lineStart = text.lastIndexOf("\n", at - 1) + 1;
    const indent = text.slice(lineStart, at);
    inserts.push({ at, comment: `/** ${sentence.replace(/\*\//g, "*\\/")} */\n${indent}` });
  };
  const unDescribed = `(${source.what} does not describe it)`;
  const visit = (node: ts.Node) => {
    if (ts.isInterfaceDeclaration(node) && isExported(node)) {
      const name = node.name.text;
      add(
        node,
        /_\w+Entry$/.test(name)
          ? `One key and value of the map field \`${name.replace(/Entry$/, "").replace(/_(\w+)$/, ".$1")}\`.`
          : `The \`${name}\` ${source.typeNoun} ${unDescribed}.`,
      );
    } else if (ts.isTypeAliasDeclaration(node) && isExported(node)) {
      const name = node.name.text;
      add(
        node,
        name.endsWith("Definition")
          ? `The type of \`${name}\`, the generic definition of the ${name.replace(/Definition$/, "")} gRPC service.`
          : `The \`${name}\` ${source.typeNoun} ${unDescribed}.`,
      );
    } else if (ts.isEnumDeclaration(node) && isExported(node)) {
      add(node, `The \`${node.name.text}\` enum ${unDescribed}.`);
    } else if (ts.isEnumMember(node) && ts.isEnumDeclaration(node.parent)) {
      const name = node.name.getText(sf);
      const value = node.initializer?.getText(sf);
      add(
        node,
        name === "UNRECOGNIZED"
          ? "A value newer than the enum this client was generated from."
          : `\`${name}\`${value !== undefined ? `, ${value} on the wire` : ""} ${unDescribed}.`,
      );
    } else if (ts.isPropertySignature(node)) {
      const path = pathOf(node, sf);
      const owner = path.slice(0, path.lastIndexOf("."));
      add(
        node,
        `The \`${node.name.getText(sf).replace(/^["']|["']$/g, "")}\` field of \`${owner}\` ${unDescribed}.`,
      );
    } else if (ts.isPropertyAssignment(node) && definitionOf(node) !== undefined) {
      const key = node.name.getText(sf);
      const inMethods =
        ts.isObjectLiteralExpression(node.parent) &&
        ts.isPropertyAssignment(node.parent.parent) &&
        node.parent.parent.name.getText(sf) === "methods";
      const inMethod =
        ts.isObjectLiteralExpression(node.parent) &&
        ts.isPropertyAssignment(node.parent.parent) &&
        ts.isObjectLiteralExpression(node.parent.parent.parent) &&
        ts.isPropertyAssignment(node.parent.parent.parent.parent) &&
        node.parent.parent.parent.parent.name.getText(sf) === "methods";
      const sentence = inMethods
        ? `The \`${key}\` rpc ${unDescribed}.`
        : inMethod && key === "name"
          ? "The rpc's name as sent on the wire."
          : definitionFields[key];
      if (sentence !== undefined) add(node, sentence);
    } else if (ts.isVariableStatement(node) && isExported(node)) {
      for (const d of node.declarationList.declarations) {
        if (!ts.isIdentifier(d.name)) continue;
        const name = d.name.text;
        const type = d.type?.getText(sf) ?? "";
        if (type.startsWith("MessageFns<")) {
          add(
            node,
            `Encodes, decodes and builds \`${name}\` messages (protobuf binary; \`fromPartial\` fills the defaults).`,
          );
        } else if (name.endsWith("Definition")) {
          add(
            node,
            `The generic definition of the ${name.replace(/Definition$/, "")} gRPC service: its methods with their request and response codecs.`,
          );
        } else {
          add(node, `\`${name}\` ${unDescribed}.`);
        }
        break;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  let out = text;
  for (const { at, comment } of inserts.sort((a, b) => b.at - a.at)) {
    out = out.slice(0, at) + comment + out.slice(at);
  }
  return out;
}
