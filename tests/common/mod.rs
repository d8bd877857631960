//! Helpers shared by the property tests.

/// Applies edits to `text`: replace, drop or insert an item, or cut the
/// text short, each at a place taken modulo its length. Items are bytes
/// for raw input, characters where the text must stay UTF-8.
pub fn damage<T: Copy>(text: &mut Vec<T>, edits: &[(usize, T, u8)]) {
    for &(at, item, kind) in edits {
        let at = at % (text.len() + 1);
        match kind {
            0 if at < text.len() => text[at] = item,
            1 if at < text.len() => {
                text.remove(at);
            }
            2 => text.truncate(at),
            _ => text.insert(at, item),
        }
    }
}
