// Entry point: take the token from the address, then start the app.
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { adoptTokenFromUrl } from "./api";

adoptTokenFromUrl();
await import("./components/guild-app");
