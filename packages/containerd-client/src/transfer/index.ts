export { type ExportOptions, exportImage } from "./export.js";
export {
  type ImportEvent,
  type ImportedImage,
  type ImportedManifest,
  type ImportOptions,
  type ImportSource,
  importImage,
} from "./import.js";
