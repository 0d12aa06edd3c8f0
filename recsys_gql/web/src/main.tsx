import { render } from "preact";
import { App } from "./App";
import { createApi } from "./client";
import { createLive } from "./live";
import "./style.css";

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App api={createApi()} live={createLive()} />, root);
}
