// bester-client.js is imported as text (pages.ts), which TypeScript does not type by the import's attribute.
declare const text: string;
export default text;
