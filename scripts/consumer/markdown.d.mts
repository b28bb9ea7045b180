export declare const NOT_STANDALONE: string;
export declare function codeBlocks(
  text: string,
): { lang: string; code: string; line: number; skip: string | undefined }[];
export declare function snippetSources(repo: string, packageReadmes: string[]): string[];
export declare function snippetFile(source: string, index: number): string;
