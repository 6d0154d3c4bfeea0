-- A Quarto / Pandoc filter: ```{.viz} code blocks become viz figures (HTML output).
--   ```{.viz format="svg" caption="AttentionRNN(2), one step"}
--   diagram attention-rnn --view cell --k 2
--   ```
-- The block's text is the command line as typed in a terminal; its attributes are the fence's header
-- options (format, caption, alt, width). Each block runs `viz fence`, which renders into viz-figures/
-- (cached, so a re-render is instant) and prints the accessible HTML (alt text, video poster, captions
-- track). A bad command stops the render with viz's one-line message.
local out = "viz-figures"

function CodeBlock(el)
  if not el.classes:includes("viz") then
    return nil
  end
  local args = {"fence", "--out", out, "--url-prefix", out .. "/"}
  for _, key in ipairs({"format", "caption", "alt", "width"}) do
    if el.attributes[key] then
      table.insert(args, "--" .. key)
      table.insert(args, el.attributes[key])
    end
  end
  local ok, html = pcall(pandoc.pipe, "viz", args, el.text)
  if not ok then
    error("viz fence failed: " .. tostring(html))
  end
  return pandoc.RawBlock("html", html)
end
