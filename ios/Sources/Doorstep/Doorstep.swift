// App code imports only `Doorstep`: the core's types (DriverSession, Job,
// DoorstepError, ...) come with it, so screens never import the generated
// module or the C module under it directly.
@_exported import DoorstepCore

import Foundation

extension DriverSession {
    /// Opens (creating if needed) the database at a file URL.
    ///
    /// iOS hands out locations as URLs (Application Support, app groups); the
    /// core takes a plain path.
    public static func open(at url: URL) throws -> DriverSession {
        try open(path: url.path)
    }
}
