// Chosen to match the code as it was written, so that the one-time reformat is
// as small as it can be: single quotes, semicolons, trailing commas wherever a
// multi-line list allows them, and a 160-column line (99% of the lines in src
// and test fit in 159 columns; 140 would rewrap ~45% more lines).
export default {
  singleQuote: true,
  printWidth: 160,
  trailingComma: 'all',
};
