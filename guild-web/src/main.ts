// Entry point. api.ts takes the token from the address when it loads, before any
// component asks the daemon anything.
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import "./api";
import "./components/guild-app";
