// Server-sent events: a parser fed with text chunks as they arrive (an XMLHttpRequest's growing responseText).

// Returns a function to feed text chunks; calls onData(payload) for each complete event's data.
export function sseParser(onData) {
  let buffer = "";
  let data = [];
  return (chunk) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (let line of lines) {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (data.length) onData(data.join("\n"));
        data = [];
      } else if (line.startsWith(":")) {
        // comment, e.g. ": keep-alive"
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
      }
    }
  };
}
