"""A window manager's part for the desktop tests, on a virtual display that has none.

    x11_window.py close NAME   asks the top-level window NAME to close, as a title bar's close
                               button does (a WM_DELETE_WINDOW client message)
    x11_window.py state NAME   prints `shown` or `hidden` (mapped and viewable, or not)

DISPLAY names the display. Exits 1 with a message when there is no such window.
"""

import sys

from Xlib import X, display, protocol


def windows(screen_root):
    stack = [screen_root]
    while stack:
        window = stack.pop()
        yield window
        stack.extend(window.query_tree().children)


def find(connection, name):
    for window in windows(connection.screen().root):
        try:
            if window.get_wm_name() == name and window.get_wm_protocols():
                return window
        except Exception:  # a window that went away while the tree was walked
            continue
    sys.exit(f"x11_window: no top-level window named {name!r}")


def main():
    command, name = sys.argv[1], sys.argv[2]
    connection = display.Display()
    window = find(connection, name)
    if command == "close":
        delete = connection.intern_atom("WM_DELETE_WINDOW")
        message = protocol.event.ClientMessage(
            window=window, client_type=connection.intern_atom("WM_PROTOCOLS"), data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        window.send_event(message, event_mask=X.NoEventMask)
        connection.flush()
    elif command == "state":
        viewable = window.get_attributes().map_state == X.IsViewable
        print("shown" if viewable else "hidden")
    else:
        sys.exit(f"x11_window: unknown command {command!r}")


main()
