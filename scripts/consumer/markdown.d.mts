export declare const NOT_STANDALONE: string;
export declare function codeBlocks(
  text: string,
): { lang: string; code: string; line: number; skip: string | undefined }[];
