// A small React page on the AI SDK's useChat, talking to lean_chat's /chat/ui as any app would: the history loaded
// from /chat/ui/{id}/messages, DefaultChatTransport with only `api` (the bearer token names the user), `resume`.
// The URL names the chat, the user and the mock's pace: ?chat=ID&user=NAME&delay=MS&resume=1.
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

const query = new URLSearchParams(location.search);
const chatId = query.get("chat") ?? "page-chat";
const user = query.get("user") ?? "page-user";
const headers = { Authorization: `Bearer ${user}` };
const options = {
  resume: query.get("resume") === "1",
  mock: { tokenDelayMs: Number(query.get("delay") ?? "5"), targetChars: Number(query.get("chars") ?? "600") },
};

function Chat({ initial }) {
  const [input, setInput] = useState("");
  const { messages, sendMessage, status, stop, error } = useChat({
    id: chatId,
    messages: initial,
    resume: true,
    transport: new DefaultChatTransport({ api: "/chat/ui", headers, body: options }),
  });
  const send = (event) => {
    event.preventDefault();
    sendMessage({ text: input });
    setInput("");
  };
  return (
    <main id="chat" data-status={status}>
      <ol id="messages">
        {messages.map((message) => (
          <li key={message.id} className={`msg ${message.role}`} data-id={message.id}>
            {message.parts.map((part) => (part.type === "text" ? part.text : "")).join("")}
          </li>
        ))}
      </ol>
      {error && <p id="error">{error.message}</p>}
      <form onSubmit={send}>
        <input id="prompt" value={input} onChange={(event) => setInput(event.target.value)} />
        <button id="send" type="submit" disabled={status !== "ready"}>
          Send
        </button>
        <button id="stop" type="button" onClick={() => stop()} disabled={status !== "streaming"}>
          Stop
        </button>
      </form>
    </main>
  );
}

function App() {
  const [initial, setInitial] = useState(null);
  useEffect(() => {
    fetch(`/chat/ui/${encodeURIComponent(chatId)}/messages`, { headers })
      .then((response) => response.json())
      .then(setInitial);
  }, []);
  return initial === null ? <p id="loading">Loading</p> : <Chat initial={initial} />;
}

createRoot(document.getElementById("root")).render(<App />);
