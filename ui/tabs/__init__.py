"""The app's tabs, one module each; `ui.app.build` lays them out and wires them to one `Context`."""
